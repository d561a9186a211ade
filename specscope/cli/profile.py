"""`specscope profile`: time target and draft forward passes over a sweep; write the CSV `fit-cost` reads.

    specscope profile -o profile.csv                                   # default model, small sweep
    specscope profile --draft-model self:24 --batch-sizes 1,4,16 --ks 0,1,3,5 --contexts 128,512,1024 -o p.csv
    specscope fit-cost p.csv -o my-cpu.toml

Rows and columns: see `specscope/engine/profiling.py`. Prints a table per step kind; last line JSON.
"""

from __future__ import annotations

import json
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
    ModelOpt,
    QuantOpt,
    ThreadsOpt,
    load_target,
    setup_torch,
)
from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open, check_output_file


def _int_list(text: str, flag: str, minimum: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        raise SpecscopeError(f"{flag} '{text}': give comma-separated integers >= {minimum}, e.g. {flag} 1,4,16")
    return sorted(set(values))


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def profile(
    output: Annotated[Path, typer.Option("--output", "-o", help="Profile CSV to write.")],
    model: ModelOpt = None,
    draft_model: DraftModelOpt = None,
    head: HeadOpt = None,
    proposers: Annotated[str, typer.Option("--proposers", help="Proposers to time (comma-separated; '' for none).")] = "ngram,draft",
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Sequences per step.")] = "1,4,16",
    ks: Annotated[str, typer.Option("--ks", help="Draft tokens per sequence (k; tokens per step = k + 1).")] = "0,1,3,5",
    contexts: Annotated[str, typer.Option("--contexts", help="Context (KV) tokens per sequence.")] = "128,512",
    reps: Annotated[int, typer.Option("--reps", min=1, help="Timed repetitions per point (median).")] = 3,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
) -> None:
    """Time target/draft forwards over batch x (k + 1) tokens and KV sizes; write a profile CSV for fit-cost."""
    from specscope.engine.profiling import profile_proposer, profile_step_phases, profile_target, write_profile_csv
    from specscope.engine.proposers import ProposerOptions, build_proposer
    from specscope.errors import unknown_name
    from specscope.engine.proposers import PROPOSERS

    bs, k_list, ctx = _int_list(batch_sizes, "--batch-sizes", 1), _int_list(ks, "--ks", 0), _int_list(contexts, "--contexts", 1)
    names = [p.strip() for p in proposers.split(",") if p.strip() and p.strip() != "none"]
    for name in names:
        if name not in PROPOSERS:
            raise unknown_name("proposer", name, PROPOSERS)
    check_output_file(output, "profile.csv")
    torch_device = setup_torch(device, threads)
    target, tokenizer, model_name = load_target(model, torch_device, quant)
    if max(ctx) + max(k_list) + 1 > target.config.max_position:
        raise SpecscopeError(f"--contexts {max(ctx)} exceeds the model's context of {target.config.max_position} tokens")
    options = ProposerOptions(k=max(k_list), draft_model=draft_model, head=head, device=str(torch_device))
    built = {n: build_proposer(n, options, target=target, tokenizer=tokenizer) for n in names}

    total = len(bs) * len(ctx) * (len(k_list) + len(names) * len([k for k in k_list if k > 0])) + len(bs)
    rows, start = [], time.perf_counter()
    with Progress(TextColumn("profile"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("", total=total)
        for row in profile_target(target, bs, k_list, ctx, reps):
            rows.append(row)
            progress.advance(task)
        for name, proposer in built.items():
            for row in profile_proposer(proposer, name, target.config.vocab_size, torch_device, bs, k_list, ctx, reps):
                rows.append(row)
                progress.advance(task)
        phase_rows = list(profile_step_phases(target, bs))
        rows.extend(phase_rows)
        progress.advance(task, len(bs))
    with atomic_open(output) as fh:
        write_profile_csv(fh, rows)
    wall = time.perf_counter() - start

    kinds = {}
    for row in rows:
        kinds.setdefault(row["step_kind"], []).append(row["seconds"])
    table = Table(title=f"specscope profile: {model_name} on {torch_device}", title_justify="left")
    for col in ("step_kind", "rows", "min ms", "median ms", "max ms"):
        table.add_column(col, justify="left" if col == "step_kind" else "right")
    for kind, secs in kinds.items():
        secs = sorted(secs)
        table.add_row(kind, str(len(secs)), f"{secs[0] * 1e3:.2f}", f"{secs[len(secs) // 2] * 1e3:.2f}", f"{secs[-1] * 1e3:.2f}")
    Console().print(table)
    Console().print(f"wrote {output}; fit it with `specscope fit-cost {output} -o COST.toml`")
    print(json.dumps({"command": "profile", "output": str(output), "model": model_name, "device": str(torch_device),
                      "proposer_labels": {n: p.label for n, p in built.items()}, "rows": len(rows),
                      "step_kinds": {k: len(v) for k, v in kinds.items()}, "wall_seconds": wall}), flush=True)
