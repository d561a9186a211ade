"""`specscope sweep CONFIG.toml -o DIR`: run a grid of measured cells, traces and a profile, then report.

    specscope sweep specscope/configs/demo.toml -o study        # what `specscope demo` runs
    specscope sweep my.toml -o study --dry-run                  # list the steps and what is done

The config (format: `specscope/sweeps/config.py`) expands into steps: measured cells
(runs/<cell>/), traces (traces/<workload>.jsonl) and a profile (profile.csv). They run in one
process on one loaded target, with a progress bar and an estimate of the time left. Each cell's
folder appears whole or not at all; running the same command again skips finished steps (resume
after Ctrl-C or a crash), and re-runs a step whose settings changed in the config. At the end it
fits cost_model.toml, simulates the traces into simulation.csv and writes report.html. Prints a
table of what ran; the last line is JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from specscope.errors import SpecscopeError
from specscope.formats.files import write_text_atomic
from specscope.study.sweep import state
from specscope.study.sweep.config import FITTED, PROFILE, RUN, TRACE, SweepConfig, load_config

KIND_NAMES = {RUN: "measured cells", TRACE: "traces", PROFILE: "profile"}


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


def sweep(
    config: Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="Sweep config (see specscope/configs/demo.toml).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Study folder to write (and resume).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the steps and which are done; run nothing.")] = False,
) -> None:
    """Run a sweep config's cells, traces and profile (resumable), then fit, simulate and report."""
    result = run_sweep(config, output, dry_run=dry_run, command="sweep")
    print(json.dumps(result), flush=True)


def read_config(path: Path) -> SweepConfig:
    """The validated config (unknown methods and workloads are one-line errors)."""
    from specscope.engine.proposers import PROPOSERS
    from specscope.workloads.registry import get_workload

    return load_config(path, methods=PROPOSERS, workloads=get_workload)


def run_sweep(config_path: Path, root: Path, dry_run: bool = False, command: str = "sweep") -> dict:
    """Plan, run what is not done, finish (fit, simulate, report); returns the JSON summary."""
    config = read_config(config_path)
    if root.exists() and not root.is_dir():
        raise SpecscopeError(f"-o {root}: exists and is not a folder; pass a folder path")
    console = Console()
    statuses = {step.name: state.status(root, step) for step in config.steps}
    todo = [s for s in config.steps if statuses[s.name] != state.DONE]
    changed = [s.name for s in todo if statuses[s.name] == state.CHANGED]
    _print_plan(console, config, statuses, root)
    if dry_run:
        return {"command": command, "output": str(root), "config": str(config_path), "dry_run": True,
                "steps": {s.name: statuses[s.name] for s in config.steps}}

    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    state.clean_temporaries(root)
    write_text_atomic(root / state.STATE_DIR / "config.toml", config_path.read_text(encoding="utf-8"))
    for name in state.stray_cells(root, config.steps):
        console.print(f"[yellow]note: runs/{name} is not in {config_path.name}; it stays and appears in the report "
                      "(delete the folder to drop it)[/yellow]")
    try:
        results = _run_steps(root, config, todo, console)
    except KeyboardInterrupt:
        Console(stderr=True).print(f"specscope: interrupted; finished steps are kept in {root}. "
                                   "Run the same command again to resume.")
        raise typer.Exit(130)
    finish = _finish(root, config, console)
    wall = time.perf_counter() - start
    _print_summary(console, config, todo, results, finish, wall)
    return {
        "command": command, "output": str(root), "config": str(config_path),
        "steps": len(config.steps), "ran": [s.name for s in todo], "changed": changed,
        "skipped": len(config.steps) - len(todo), "cells": results, **finish, "wall_seconds": round(wall, 2),
    }


def _print_plan(console: Console, config: SweepConfig, statuses: dict, root: Path) -> None:
    parts = []
    for kind, label in KIND_NAMES.items():
        steps = config.of_kind(kind)
        if steps:
            done = sum(statuses[s.name] == state.DONE for s in steps)
            parts.append(f"{len(steps)} {label} ({done} done)")
    console.print(f"sweep {config.path} -> {root}: " + ", ".join(parts))
    for name, st in statuses.items():
        if st == state.CHANGED:
            console.print(f"  {name}: settings changed since it ran; it will run again")


def _run_steps(root: Path, config: SweepConfig, todo: list, console: Console) -> dict:
    """Run the steps in order; returns a short result per step."""
    from specscope.study.sweep.execute import EngineSession

    if not todo:
        return {}
    session = EngineSession(config.engine)
    results = {}
    columns = (TextColumn("{task.description:<36}"), BarColumn(), TextColumn("{task.fields[done]}/{task.fields[steps]} steps"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, speed_estimate_period=600) as progress:
        task = progress.add_task("loading the model", total=sum(s.units for s in todo), done=0, steps=len(todo))
        session.load()
        for i, step in enumerate(todo):
            progress.update(task, description=step.name)
            before = progress.tasks[0].completed
            started = time.perf_counter()

            def advance(fraction, units=step.units):
                progress.advance(task, fraction * units)

            results[step.name] = _run_step(root, step, session, advance)
            progress.update(task, completed=before + step.units, done=i + 1)
            seconds = time.perf_counter() - started
            results[step.name]["seconds"] = round(seconds, 2)
            progress.console.print(f"  {step.name:<36} {_describe(results[step.name])} ({seconds:.1f} s)")
    return results


def _run_step(root: Path, step, session, advance) -> dict:
    out = root / step.output
    if step.kind == RUN:
        summary = {}
        settings = step.settings
        if settings.get("adaptive_cost_model") == FITTED:  # decide under this sweep's fit (its profile ran already)
            settings = {**settings, "adaptive_cost_model": str(_fitted_cost_model(root))}

        def fill(folder: Path) -> None:
            summary.update(session.run_cell(settings, folder, advance))

        state.write_cell(root, step, fill)
        return {"throughput_tok_s": summary["throughput_tok_s"], "mean_acc_len": summary["mean_acc_len"],
                "num_errors": summary["num_errors"]}
    state.forget(root, step)
    result = session.trace(step.settings, out, advance) if step.kind == TRACE else session.profile(step.settings, out, advance)
    state.mark_done(root, step)
    return result


def _fitted_cost_model(root: Path) -> Path:
    """`cost_model.toml`, fitted from `profile.csv` now unless it already is (the end of the sweep refits it)."""
    from specscope.analysis.loaders import COST_MODEL_TOML, PROFILE_CSV
    from specscope.study.sweep import finish

    fitted, profile = root / COST_MODEL_TOML, root / PROFILE_CSV
    if not profile.is_file():
        raise SpecscopeError(f"{profile}: missing; the adaptive cells decide under the cost model fitted from it "
                             "(run the sweep again: its profile step comes first)")
    if not fitted.is_file() or fitted.stat().st_mtime < profile.stat().st_mtime:
        finish.fit_cost(root)
    return fitted


def _describe(result: dict) -> str:
    if "throughput_tok_s" in result:
        acc = result["mean_acc_len"]
        return f"{result['throughput_tok_s']:7.1f} tok/s  acc_len {acc:.2f}" if acc else f"{result['throughput_tok_s']:7.1f} tok/s"
    if "positions" in result:
        means = ", ".join(f"{n} {v:.2f}" for n, v in result["mean_acc_len"].items() if v is not None)
        return f"{result['requests']} requests, {result['positions']} positions, mean acc_len {means}"
    return f"{result.get('rows', 0)} rows"


def _finish(root: Path, config: SweepConfig, console: Console) -> dict:
    """Fit the cost model, simulate, write the report: what exists decides what can be done."""
    from specscope.analysis.loaders import PROFILE_CSV
    from specscope.study.sweep import finish

    out: dict = {}
    if config.of_kind(PROFILE) and (root / PROFILE_CSV).is_file():
        errors = finish.fit_cost(root)
        out["cost_model_fit_error"] = {k: round(v, 4) for k, v in errors.items()}
        console.print("fitted cost_model.toml (mean relative error: "
                      + ", ".join(f"{k} {v:.1%}" for k, v in errors.items()) + ")")
    traces = [root / s.output for s in config.of_kind(TRACE) if (root / s.output).is_file()]
    if config.simulate is not None and traces:
        rows, skipped, capped = finish.simulate(root, config.simulate, traces)
        out["simulation_rows"] = rows
        console.print(f"simulated {len(traces)} trace(s): {rows} rows in simulation.csv"
                      + (f"; {len(skipped)} policy x proposer pair(s) do not apply and were left out" if skipped else ""))
        for note in capped:
            console.print(f"note: {note}")
    try:
        result = finish.report(root)
    except ImportError as err:
        console.print(f"[yellow]no report: {err}; pip install 'specscope[report]'[/yellow]")
        return out
    out.update(report=str(result.path), figures=result.figures, missing_sections=result.missing)
    return out


def _print_summary(console: Console, config: SweepConfig, todo: list, results: dict, finish: dict, wall: float) -> None:
    ran = {s.name for s in todo}
    table = Table(title=f"specscope sweep: {wall:.0f} s", title_justify="left")
    for col in ("steps", "total", "ran", "already done"):
        table.add_column(col, justify="left" if col == "steps" else "right")
    for kind, label in KIND_NAMES.items():
        steps = config.of_kind(kind)
        if steps:
            n_ran = sum(s.name in ran for s in steps)
            table.add_row(label, str(len(steps)), str(n_ran), str(len(steps) - n_ran))
    console.print(table)
    if "report" in finish:
        missing = finish["missing_sections"]
        console.print(f"report: {finish['report']} ({finish['figures']} figures"
                      + (f"; sections without data: {', '.join(missing)}" if missing else "") + ")")
