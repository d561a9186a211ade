"""The workload options shared by the verbs that run prompts (`workloads`, `run`, `trace`).

Declare them with these `Annotated` types so every verb spells and documents them identically,
then call `prompts_from_options(...)`:

    def run(workload: WorkloadOpt = DEFAULT_WORKLOAD, source: SourceOpt = None,
            prompt_field: PromptFieldOpt = None, field: FieldOpt = None,
            num_prompts: NumPromptsOpt = None, seed: SeedOpt = 0, chat: ChatOpt = None, ...):
        prompts = prompts_from_options(workload, source, prompt_field, field, num_prompts, seed)
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from specscope.workloads.fields import parse_field_map
from specscope.workloads.loader import load_prompts
from specscope.workloads.prompt import Prompt

DEFAULT_WORKLOAD = "chat"

WorkloadOpt = Annotated[
    str,
    typer.Option(
        "--workload", "-w",
        help="Task family: code-edit, chat, summarize, math, aime, gpqa (or a dataset alias such as gsm8k).",
    ),
]
SourceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--source",
        help="'bundled' (offline samples; default), 'hf' (the study's dataset), "
        "or your own .jsonl/.json/.csv/.tsv/.parquet file.",
    ),
]
PromptFieldOpt = Annotated[
    Optional[str],
    typer.Option("--prompt-field", help="Column of your file holding the workload's main field (e.g. the question)."),
]
FieldOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--field",
        help="Map template fields to your columns: FIELD=COLUMN[,...], repeatable; e.g. instruction=task,input=code.",
    ),
]
NumPromptsOpt = Annotated[
    Optional[int],
    typer.Option("--num-prompts", "-n", min=1, help="Run a seeded random subset of this many prompts (default: all)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the prompt subset (and of any sampling the verb does).")]
ChatOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--chat/--plain",
        help="Model's chat template, or plain text for base models (default: the template if the model has one).",
    ),
]


def prompts_from_options(
    workload: str,
    source: Optional[str] = None,
    prompt_field: Optional[str] = None,
    field: Optional[list[str]] = None,
    num_prompts: Optional[int] = None,
    seed: int = 0,
) -> list[Prompt]:
    """Load the prompts the shared options describe (raises `SpecscopeError` on bad input)."""
    return load_prompts(workload, source, prompt_field, parse_field_map(field), num_prompts, seed)
