"""What the verbs share: their option types, the one builder of run settings from options, and output helpers.

Declare options with these `Annotated` types so every verb spells and documents them identically;
build the run's settings with `run_settings(...)`: it applies the defaults of `specscope/settings.py`
(an option the user did not give is None here), checks every value and name once, and reports a
problem as one line naming the flag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from specscope.errors import SpecscopeError
from specscope.settings import (ADAPTIVE, ADAPTIVE_COST_MODEL, BASELINE, CLI_NAMES, DEFAULT_DRAFT_MODEL, NGRAM_MAX, NGRAM_MIN, AdaptiveSettings, RunSettings)

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Target model: a GGUF file, a Hugging Face folder, or 'smollm2-135m' (default)."),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
QuantOpt = Annotated[
    str,
    typer.Option("--quant", help="auto (GGUF blocks with the CPU kernels when possible), gguf, or none (dequantise)."),
]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (default: torch's choice).")]
DraftModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--draft-model",
        help=f"Draft for --method draft: 'self:L' (the target's first L layers; default {DEFAULT_DRAFT_MODEL}) or a "
        "model path sharing the target's tokenizer.",
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
        help="Draft a tree instead of a chain (--method draft, eagle, eagle3, mtp), verified in one pass: DxB, a full "
        "B-ary tree of D levels counting the last committed token (3x2 = 2 + 4 = 6 draft tokens); the study's trees "
        "6 (= 3x2) and 21 (= 3x4, 20 drafts + the root); or dynamic:N[:DxK], N drafts kept by cumulative draft "
        "probability from a top-K growth D levels deep (default 7x4). Overrides --k.",
    ),
]
NgramMinOpt = Annotated[Optional[int], typer.Option("--ngram-min", help=f"Shortest n-gram the ngram proposer matches "
                                                    f"(default {NGRAM_MIN}).")]
NgramMaxOpt = Annotated[Optional[int], typer.Option("--ngram-max", help=f"Longest n-gram the ngram proposer matches "
                                                    f"(default {NGRAM_MAX}).")]
OutputDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Folder for requests.jsonl and summary.json.")]
MaxNewOpt = Annotated[
    Optional[int],
    typer.Option("--max-new-tokens", help="Output tokens per request (default: the workload's own limit)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Also print the result as one JSON line (stable keys) at the end.")]

# Which prompts: the options every verb that runs prompts shares.
WorkloadOpt = Annotated[
    str,
    typer.Option(
        "--workload", "-w",
        help="Task family: code-edit, chat, summarize, math, aime, gpqa (or a dataset alias such as gsm8k), "
        "or a prompt file.",
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
    typer.Option("--num-prompts", "-n", help="Run a seeded random subset of this many prompts (default: all)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the prompt subset (and of any sampling the verb does).")]
ChatOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--chat/--plain",
        help="Model's chat template, or plain text for base models (default: the template if the model has one).",
    ),
]


def run_settings(*, k: str | int | None = None, cost_model: str | None = None, field=None, draft_model=None,
                 head=None, console: Console | None = None, **options) -> RunSettings:
    """The run's settings from a verb's options (None = not given: the default), checked once.

    `k` may be 'adaptive' (k and proposer per step under `cost_model`, default the ADAPTIVE_COST_MODEL preset;
    a note says so on `console`). Raises a one-line SpecscopeError naming the flag.
    """
    from specscope.study.engine_backend import check_proposers

    adaptive = None
    if isinstance(k, str) and k.strip() == ADAPTIVE:
        k = None
        adaptive = AdaptiveSettings(cost_model=cost_model or ADAPTIVE_COST_MODEL)
    elif k is not None:
        try:
            k = int(k)
        except ValueError:
            raise SpecscopeError(f"--k '{k}': give a number of draft tokens (e.g. --k 3) or 'adaptive'") from None
    names = [n.strip() for n in str(options.get("method") or BASELINE).split(",")]
    if draft_model is not None and "draft" not in names and set(names) & set(HEAD_METHODS):
        raise SpecscopeError(f"--draft-model is the draft model of --method draft; give the {','.join(names)} head "
                             "folder with --head DIR")
    settings = RunSettings.build(k=k, fields=tuple(field or ()), draft_model=draft_model, head=head,
                                 adaptive=adaptive, **options).check(CLI_NAMES)
    check_proposers(settings)
    if adaptive is not None and cost_model is None and console is not None:
        console.print(f"note: --k adaptive: no --cost-model given; using the {ADAPTIVE_COST_MODEL} preset (a 2-core "
                      "CPU). Fit this machine's: specscope profile -o p.csv && specscope fit-cost p.csv -o cost.toml",
                      soft_wrap=True)
    return settings


def check_output_dir(path: Path, files=()) -> None:
    """`-o DIR` can be a result folder (and `files` in it can be written): one line before any work if not."""
    from specscope.formats.files import check_output_folder

    check_output_folder(path, "-o", files)


def int_list(text: str, flag: str, minimum: int) -> list[int]:
    """`1,4,16` -> [1, 4, 16] (sorted, unique), or a one-line error naming the flag."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        raise SpecscopeError(f"{flag} '{text}': give comma-separated integers >= {minimum}, e.g. {flag} 1,4,16")
    return sorted(set(values))


def name_list(text: str, flag: str) -> list[str]:
    """`ngram,draft` -> ['ngram', 'draft'], or a one-line error for an empty list or a repeated name."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise SpecscopeError(f"{flag} is empty; name at least one, e.g. {flag} ngram,draft")
    if len(set(names)) != len(names):
        raise SpecscopeError(f"{flag} '{text}' names a proposer twice")
    return names


def print_json(enabled: bool, obj: dict) -> None:
    """The verb's machine-readable result, as one JSON line on stdout, when `--json` was given."""
    if enabled:
        print(json.dumps(obj), flush=True)

