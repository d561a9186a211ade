"""What the engine verbs (`run`, `trace`, `profile`) share: option types, device/thread setup, loading.

Declare options with these `Annotated` types so the verbs spell and document them identically.
Everything here validates user input first and raises `SpecscopeError` with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from specscope.errors import SpecscopeError

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Target model: a GGUF file, a Hugging Face folder, or 'smollm2-135m' (default)."),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
QuantOpt = Annotated[
    str,
    typer.Option("--quant", help="auto (GGUF blocks with the CPU kernels when possible), gguf, or none (dequantise)."),
]
ThreadsOpt = Annotated[
    Optional[int], typer.Option("--threads", min=1, help="CPU threads for torch (default: torch's choice).")
]
DraftModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--draft-model",
        help="Draft for --method draft: 'self:L' (the target's first L layers; default self:8) or a model "
        "path sharing the target's tokenizer.",
    ),
]
HEAD_METHODS = ("eagle", "eagle3", "mtp")
HeadOpt = Annotated[
    Optional[str],
    typer.Option(
        "--head",
        help="Head folder for --method eagle/eagle3/mtp: ours from `specscope train-head`, or a published "
        "EAGLE / EAGLE-3 checkpoint (default: the head shipped for the target).",
    ),
]
TreeOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tree",
        help="Draft a static tree DxB instead of a chain (--method draft): a full B-ary tree of D levels counting "
        "the last committed token, e.g. 3x2 = 2 + 4 = 6 draft tokens verified in one pass. Overrides --k.",
    ),
]
NgramMinOpt = Annotated[int, typer.Option("--ngram-min", min=1, help="Shortest n-gram the ngram proposer matches.")]
NgramMaxOpt = Annotated[int, typer.Option("--ngram-max", min=1, help="Longest n-gram the ngram proposer matches.")]
OutputDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder for requests.jsonl and summary.json.")]
MaxNewOpt = Annotated[
    Optional[int],
    typer.Option("--max-new-tokens", min=1, help="Output tokens per request (default: the workload's own limit)."),
]


def setup_torch(device: str, threads: int | None):
    """Validate `--device`/`--threads` and apply them; returns the torch.device."""
    import torch

    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SpecscopeError(f"--device '{device}' is not supported; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecscopeError("--device cuda: no CUDA device is available to torch here; use --device cpu")
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.device(device)


def check_ngram(ngram_min: int, ngram_max: int) -> None:
    if ngram_min > ngram_max:
        raise SpecscopeError(f"--ngram-min {ngram_min} is larger than --ngram-max {ngram_max}")


def check_output_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise SpecscopeError(f"-o {path}: exists and is not a folder; pass a folder path")


def load_workload_prompts(workload, source, prompt_field, field, num_prompts, seed):
    """Prompts of a workload; `--workload FILE.jsonl` is shorthand for `--workload chat --source FILE`."""
    from specscope.workloads.options import prompts_from_options

    if Path(workload).is_file():
        source, path = workload, Path(workload)
        workload = "chat"
        if prompt_field is None and not field:
            prompt_field = _guess_prompt_field(path)
    return prompts_from_options(workload, source, prompt_field, field, num_prompts, seed)


def _guess_prompt_field(path: Path) -> str | None:
    """'prompt' when the file's first JSON record has a `prompt` but no `message` field."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = json.loads(next(line for line in fh if line.strip()))
    except (OSError, StopIteration, ValueError, UnicodeDecodeError):
        return None
    if isinstance(first, dict) and "prompt" in first and "message" not in first:
        return "prompt"
    return None


def load_target(model: str | None, device, quant: str = "auto"):
    """(DecoderModel, tokenizer, name) of the target."""
    from specscope.engine.loading import DEFAULT_MODEL, load_model

    target, tokenizer = load_model(model, device=device, quant=quant)
    return target, tokenizer, model or DEFAULT_MODEL


def stop_token_ids(target, tokenizer) -> list[int]:
    """End-of-sequence ids: the model's and the tokenizer's."""
    ids = set(target.config.eos_token_ids)
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def build_requests(prompts, tokenizer, chat, max_new_tokens):
    """Engine requests from workload prompts (per-prompt output limits unless --max-new-tokens)."""
    from specscope.engine.scheduler import Request
    from specscope.workloads import render_prompt
    from specscope.workloads.render import use_chat

    chat = use_chat(tokenizer, chat)
    return [
        Request(p.id, render_prompt(p, tokenizer, chat), max_new_tokens or p.max_new_tokens, meta={"prompt": p})
        for p in prompts
    ]


def check_tree(spec: str | None, method: str):
    """The TreeSpec of `--tree` (None without one); one-line error for a bad spec or a method that cannot branch."""
    if spec is None:
        return None
    from specscope.engine.proposers import PROPOSERS
    from specscope.engine.tree import parse_tree

    tree = parse_tree(spec)
    if method in PROPOSERS and not PROPOSERS[method].supports_tree:
        raise SpecscopeError(
            f"--tree {spec}: method '{method}' proposes a single continuation and cannot draft a tree; "
            "use --method draft (or drop --tree)"
        )
    return tree


def proposer_options(method: str, k: int, temperature: float, top_p: float, ngram_min: int, ngram_max: int,
                     draft_model: str | None, device, tree: str | None = None,
                     head: str | None = None) -> "ProposerOptions":
    from specscope.engine.proposers import PROPOSERS, ProposerOptions
    from specscope.errors import unknown_name

    if method not in PROPOSERS:
        raise unknown_name("method", method, PROPOSERS)
    if k < 0:
        raise SpecscopeError(f"--k {k}: the number of draft tokens per step must be >= 0")
    if temperature < 0:
        raise SpecscopeError(f"--temperature {temperature} must be >= 0 (0 = greedy)")
    if not 0 < top_p <= 1:
        raise SpecscopeError(f"--top-p {top_p} must be in (0, 1]")
    check_ngram(ngram_min, ngram_max)
    return ProposerOptions(k=k, temperature=temperature, top_p=top_p, ngram_min=ngram_min, ngram_max=ngram_max,
                           draft_model=draft_model, head=head, device=str(device), tree=check_tree(tree, method))
