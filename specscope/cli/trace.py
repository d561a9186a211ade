"""`specscope trace`: record per-position acceptance traces (the native trace format, `specscope/formats/trace.py`).

    specscope trace --workload code-edit -n 8 --proposers ngram,draft --k-max 20 --max-new-tokens 128 -o code.trace.jsonl

At every output position each proposer drafts up to k-max tokens and greedy verification records
acc_len; one token is committed per position, so the outputs are plain greedy decoding (how:
`specscope/engine/tracing.py`). Requests run in batches of --batch-size. Ctrl-C keeps the finished
requests and marks the header `"partial": true`. Prints a table of mean acc_len per proposer
(`--json`: and the result as one JSON line).

    specscope trace --workload chat --proposers eagle3,draft --trees 6,dynamic:20 -o chat.trace.jsonl

`--trees`: also trace every proposer that can draft a tree (draft, eagle, eagle3, mtp) under these
shapes, stored as the proposers `<proposer>@tree:<shape>` (e.g. `eagle3@tree:3x2`), which
`specscope simulate` prices as verifying the whole tree every step (policy `tree`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.cli.options import (ChatOpt, DeviceOpt, DraftModelOpt, FieldOpt, HeadOpt, JsonOpt, MaxNewOpt, ModelOpt,
                                   NgramMaxOpt, NgramMinOpt, NumPromptsOpt, PromptFieldOpt, QuantOpt, SeedOpt,
                                   SourceOpt, ThreadsOpt, WorkloadOpt, name_list, print_json, run_settings)
from specscope.errors import SpecscopeError
from specscope.formats.files import check_output_file
from specscope.settings import MAX_K, DEFAULT_WORKLOAD


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)


def tree_shapes(text: str | None, proposers: list[str]) -> list[str]:
    """`--trees 6,dynamic:20` -> ['6', 'dynamic:20'], each checked; one-line errors for a bad shape, a shape given
    twice, or no proposer that can draft a tree."""
    from specscope.engine.proposers import PROPOSERS
    from specscope.tree_spec import parse_tree

    if text is None:
        return []
    shapes = [t.strip() for t in text.split(",") if t.strip()]
    if not shapes:
        raise SpecscopeError("--trees is empty; name tree shapes, e.g. --trees 6,dynamic:20")
    labels = [parse_tree(t).label for t in shapes]
    if len(set(labels)) != len(labels):
        raise SpecscopeError(f"--trees '{text}' names a tree shape twice")
    if not any(name in PROPOSERS and PROPOSERS[name].supports_tree for name in proposers):
        raise SpecscopeError(f"--trees: none of --proposers {','.join(proposers)} can draft a tree; add draft, eagle, "
                             "eagle3 or mtp")
    return shapes


def trace(
    output: Annotated[Path, typer.Option("--output", "-o", help="Trace file to write (JSON Lines).")],
    model: ModelOpt = None,
    workload: WorkloadOpt = DEFAULT_WORKLOAD,
    source: SourceOpt = None,
    prompt_field: PromptFieldOpt = None,
    field: FieldOpt = None,
    num_prompts: NumPromptsOpt = None,
    seed: SeedOpt = 0,
    chat: ChatOpt = None,
    proposers: Annotated[str, typer.Option("--proposers", help="Comma-separated proposers to trace.")] = "ngram,draft",
    k_max: Annotated[int, typer.Option("--k-max", help="Lookahead: draft tokens per position.")] = 20,
    trees: Annotated[Optional[str], typer.Option(
        "--trees", help="Comma-separated tree shapes (3x2, the presets 6 and 21, dynamic:N) to trace the proposers "
        "that can draft a tree under, as <proposer>@tree:<shape>.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Requests traced at once.")] = 8,
    max_new_tokens: MaxNewOpt = None,
    draft_model: DraftModelOpt = None,
    head: HeadOpt = None,
    ngram_min: NgramMinOpt = None,
    ngram_max: NgramMaxOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Record the acc_len every proposer would achieve at every output position (greedy)."""
    from specscope.study.engine_backend import EngineBackend, check_proposers
    from specscope.study.prompts import run_prompts
    from specscope.study.tracing import record_traces

    names = name_list(proposers, "--proposers")
    shapes = tree_shapes(trees, names)
    if not 1 <= k_max <= MAX_K:
        raise SpecscopeError(f"--k-max {k_max}: must be an integer between 1 and {MAX_K}")
    check_output_file(output, "trace.jsonl")
    settings = run_settings(
        model=model, device=device, threads=threads, quant=quant, workload=workload, source=source,
        prompt_field=prompt_field, field=field, num_prompts=num_prompts, seed=seed, chat=chat,
        batch_size=batch_size, max_new_tokens=max_new_tokens, draft_model=draft_model, head=head,
        ngram_min=ngram_min, ngram_max=ngram_max)
    check_proposers(settings.replace(method=",".join(names)))
    prompts = run_prompts(settings)
    backend = EngineBackend(settings)
    backend.load()
    console = Console(stderr=True)
    start = time.perf_counter()
    with Progress(TextColumn("trace " + ",".join(names)), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("", total=len(prompts))

        def traced(seq):
            progress.advance(task)
            if seq.error:
                console.print(f"[yellow]request {seq.request.id}: {seq.error}[/yellow]", soft_wrap=True)

        result = record_traces(backend, settings, names, k_max, output, on_traced=traced, keep_partial=True,
                               prompts=prompts, trees=shapes)
    names = list(result["mean_acc_len"])
    wall = time.perf_counter() - start
    partial = result["partial"]
    table = Table(title=f"specscope trace: {result['requests']} requests, k_max {k_max}" + (" (PARTIAL)" if partial else ""),
                  title_justify="left")
    for col in ("proposer", "label", "mean acc_len", "positions"):
        table.add_column(col, justify="left" if col in ("proposer", "label") else "right")
    for n in names:
        mean = result["mean_acc_len"][n]
        table.add_row(n, result["proposer_labels"][n], "-" if mean is None else f"{mean:.3f}", str(result["positions"]))
    Console().print(table)
    Console().print(f"wrote {output}")
    print_json(json_out, {"command": "trace", "output": str(output), "model": backend.load()[3], "proposers": names,
                          "proposer_labels": result["proposer_labels"], "k_max": k_max,
                          "num_requests": result["requests"], "num_errors": result["errors"],
                          "positions": result["positions"], "mean_acc_len": result["mean_acc_len"],
                          "wall_seconds": wall, "partial": partial})
    if partial:
        raise typer.Exit(130)
