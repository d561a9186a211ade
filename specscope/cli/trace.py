"""`specscope trace`: record per-position acceptance traces (native trace format, DESIGN.md).

    specscope trace --workload code-edit -n 8 --proposers ngram,draft --k-max 20 --max-new-tokens 128 -o code.trace.jsonl

At every output position each proposer drafts up to k-max tokens and greedy verification records
acc_len; one token is committed per position, so the outputs are plain greedy decoding (how it is
computed: `specscope/engine/tracing.py`). Requests run in batches of --batch-size. The file is written
as requests finish; Ctrl-C keeps the finished requests and marks the header `"partial": true`.
Prints a table of mean acc_len per proposer; the last line is JSON.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.cli.options import (
    DeviceOpt,
    DraftModelOpt,
    HeadOpt,
    MaxNewOpt,
    ModelOpt,
    QuantOpt,
    NgramMaxOpt,
    NgramMinOpt,
    ThreadsOpt,
    build_requests,
    load_target,
    load_workload_prompts,
    proposer_options,
    setup_torch,
    stop_token_ids,
)
from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open, check_output_file
from specscope.workloads.options import (
    DEFAULT_WORKLOAD,
    ChatOpt,
    FieldOpt,
    NumPromptsOpt,
    PromptFieldOpt,
    SeedOpt,
    SourceOpt,
    WorkloadOpt,
)


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)


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
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Requests traced at once.")] = 8,
    max_new_tokens: MaxNewOpt = None,
    draft_model: DraftModelOpt = None,
    head: HeadOpt = None,
    ngram_min: NgramMinOpt = 3,
    ngram_max: NgramMaxOpt = 7,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
) -> None:
    """Record the acc_len every proposer would achieve at every output position (greedy)."""
    from specscope.engine.proposers import build_proposer
    from specscope.engine.tracing import collect_traces
    from specscope.formats.trace import Trace, RequestTrace, request_record

    names = [p.strip() for p in proposers.split(",") if p.strip()]
    if not names:
        raise SpecscopeError("--proposers is empty; name at least one, e.g. --proposers ngram,draft")
    if len(set(names)) != len(names):
        raise SpecscopeError(f"--proposers '{proposers}' names a proposer twice")
    if k_max < 1:
        raise SpecscopeError(f"--k-max {k_max} must be at least 1")
    check_output_file(output, "trace.jsonl")
    torch_device = setup_torch(device, threads)
    options = {n: proposer_options(n, k_max, 0.0, 1.0, ngram_min, ngram_max, draft_model, torch_device,
                                   head=head) for n in names}
    prompts = load_workload_prompts(workload, source, prompt_field, field, num_prompts, seed)

    target, tokenizer, model_name = load_target(model, torch_device, quant)
    built = {n: build_proposer(n, options[n], target=target, tokenizer=tokenizer) for n in names}
    requests = build_requests(prompts, tokenizer, chat, max_new_tokens)
    max_new = max((r.max_new_tokens for r in requests), default=1)
    header = Trace(
        requests=[], proposers=names, model=model_name, k_max=k_max, hardware=_hardware(torch_device),
        workload=prompts[0].workload if prompts else workload,
        extra={"proposer_labels": {n: p.label for n, p in built.items()}, "ngram_min": ngram_min,
               "ngram_max": ngram_max, "max_new_tokens": max_new_tokens, "partial": False},
    ).header()

    records, errors, partial = [], 0, False
    console = Console(stderr=True)
    start = time.perf_counter()
    lines = []
    try:
        with Progress(TextColumn("trace " + ",".join(names)), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("", total=len(requests))
            for seq, acc, confidence in collect_traces(target, built, requests, k_max, batch_size, max_new,
                                                       stop_token_ids(target, tokenizer)):
                progress.advance(task)
                if seq.error:
                    errors += 1
                    console.print(f"[yellow]request {seq.request.id}: {seq.error}[/yellow]")
                    continue
                prompt = seq.request.meta.get("prompt")
                req = RequestTrace(seq.request.id, seq.request.prompt_token_ids, seq.output.tolist(), acc,
                                   workload=getattr(prompt, "workload", None), draft_confidence=confidence or None)
                lines.append(json.dumps(request_record(req, names), separators=(",", ":")))
                records.append(acc)
    except KeyboardInterrupt:
        partial = True
    header["partial"] = partial
    with atomic_open(output) as fh:
        fh.write(json.dumps(header) + "\n")
        for line in lines:
            fh.write(line + "\n")
    wall = time.perf_counter() - start

    means = {n: _mean([a[n] for a in records]) for n in names}
    table = Table(title=f"specscope trace: {len(records)} requests, k_max {k_max}" + (" (PARTIAL)" if partial else ""),
                  title_justify="left")
    for col in ("proposer", "label", "mean acc_len", "positions"):
        table.add_column(col, justify="left" if col in ("proposer", "label") else "right")
    positions = sum(len(a[names[0]]) for a in records) if records else 0
    for n in names:
        table.add_row(n, built[n].label, "-" if means[n] is None else f"{means[n]:.3f}", str(positions))
    Console().print(table)
    Console().print(f"wrote {output}")
    print(json.dumps({"command": "trace", "output": str(output), "model": model_name, "proposers": names,
                      "proposer_labels": header["proposer_labels"], "k_max": k_max, "num_requests": len(records),
                      "num_errors": errors, "positions": positions, "mean_acc_len": means, "wall_seconds": wall,
                      "partial": partial}), flush=True)
    if partial:
        raise typer.Exit(130)


def _mean(arrays) -> float | None:
    total = sum(len(a) for a in arrays)
    return sum(int(a.sum()) for a in arrays) / total if total else None


def _hardware(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} cpu x{torch.get_num_threads()} threads ({platform.processor() or platform.system()})"
