"""`specscope profile`: time target and draft forward passes over batch shapes; write the CSV `fit-cost` reads.

    specscope profile -o profile.csv                                   # default model, small sweep
    specscope profile --draft-model self:24 --batch-sizes 1,4,16 --ks 0,1,3,5 --contexts 128,512,1024 -o p.csv
    specscope fit-cost p.csv -o my-cpu.toml

Rows and columns: `specscope/engine/profiling.py`, `specscope/formats/profile.py`. Prints a table per
step kind (`--json`: and the result as one JSON line).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.cli.options import (DeviceOpt, DraftModelOpt, HeadOpt, JsonOpt, ModelOpt, QuantOpt, ThreadsOpt,
                                   int_list, print_json, run_settings)
from specscope.errors import SpecscopeError
from specscope.formats.files import check_output_file
from specscope.settings import BASELINE


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
    reps: Annotated[int, typer.Option("--reps", help="Timed repetitions per point (median).")] = 3,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Time target/draft forwards over batch x (k + 1) tokens and KV sizes; write a profile CSV for fit-cost."""
    from specscope.study.engine_backend import EngineBackend, check_proposers
    from specscope.study.profiling import profile as run_profile
    from specscope.study.profiling import profile_points

    bs, k_list, ctx = int_list(batch_sizes, "--batch-sizes", 1), int_list(ks, "--ks", 0), int_list(contexts, "--contexts", 1)
    if reps < 1:
        raise SpecscopeError(f"--reps {reps}: must be an integer >= 1")
    names = [p.strip() for p in proposers.split(",") if p.strip() and p.strip() != BASELINE]
    check_output_file(output, "profile.csv")
    settings = run_settings(model=model, device=device, threads=threads, quant=quant, draft_model=draft_model,
                            head=head)
    if names:
        check_proposers(settings.replace(method=",".join(names)))
    backend = EngineBackend(settings)
    device_used, _, _, model_name = backend.load()
    start = time.perf_counter()
    with Progress(TextColumn("profile"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("", total=profile_points(bs, k_list, ctx, names))
        rows, labels = run_profile(backend, settings, names, bs, k_list, ctx, reps, output,
                           advance=lambda points: progress.advance(task, points))
    wall = time.perf_counter() - start

    kinds: dict[str, list[float]] = {}
    for row in rows:
        kinds.setdefault(row["step_kind"], []).append(row["seconds"])
    table = Table(title=f"specscope profile: {model_name} on {device_used}", title_justify="left")
    for col in ("step_kind", "rows", "min ms", "median ms", "max ms"):
        table.add_column(col, justify="left" if col == "step_kind" else "right")
    for kind, secs in kinds.items():
        secs = sorted(secs)
        table.add_row(kind, str(len(secs)), f"{secs[0] * 1e3:.2f}", f"{secs[len(secs) // 2] * 1e3:.2f}", f"{secs[-1] * 1e3:.2f}")
    Console().print(table)
    Console().print(f"wrote {output}; fit it with `specscope fit-cost {output} -o COST.toml`")
    print_json(json_out, {"command": "profile", "output": str(output), "model": model_name, "device": str(device_used),
                          "proposer_labels": labels, "rows": len(rows),
                          "step_kinds": {k: len(v) for k, v in kinds.items()}, "wall_seconds": wall})
