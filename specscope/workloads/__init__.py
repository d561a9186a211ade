"""Workloads: the study's six task families as prompts ready for the engine.

    from specscope.workloads import load_prompts, render_fitting, bleu4_overlap

    prompts = load_prompts("code-edit", num_prompts=8, seed=0)          # bundled, offline
    prompts = load_prompts("math", source="hf")                          # openai/gsm8k
    prompts = load_prompts("chat", source="mine.csv", prompt_field="q")  # your own file
    requests, skipped = render_fitting(prompts, tokenizer, context_len=2048)
    overlap = bleu4_overlap(prompt.text, output_text)                    # 0..1

`specscope workloads` lists the families; `specscope workloads NAME` shows a selection of prompts.
"""

from specscope.workloads.fields import parse_field_map
from specscope.workloads.loader import load_prompts
from specscope.workloads.overlap import bleu4_overlap
from specscope.workloads.prompt import Prompt
from specscope.workloads.registry import WORKLOADS, Workload, get_workload
from specscope.workloads.render import has_chat_template, render_fitting, render_prompt, render_text, use_chat
from specscope.workloads.sampling import sample_indices, select_fitting

__all__ = [
    "WORKLOADS",
    "Prompt",
    "Workload",
    "bleu4_overlap",
    "get_workload",
    "has_chat_template",
    "load_prompts",
    "parse_field_map",
    "render_fitting",
    "render_prompt",
    "render_text",
    "sample_indices",
    "select_fitting",
    "use_chat",
]
