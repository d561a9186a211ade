"""Run a sweep: plan its steps, run those not done (resumably), then fit, simulate and report.

    result = run_sweep(Path("specscope/configs/demo.toml"), Path("study"), events=MyEvents())

What happens is reported through `SweepEvents` (the CLI draws a progress bar and a table from them);
`QuietEvents` reports nothing. The returned dict is the sweep's machine-readable summary (what the
CLI prints with `--json`). Resume and change rules: `state.py`; the config: `config.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

from specscope.errors import SpecscopeError
from specscope.formats.files import write_text_atomic
from specscope.formats.layout import StudyFolder
from specscope.study.sweep import finish, state
from specscope.study.sweep.config import FITTED, PROFILE, RUN, TRACE, Step, SweepConfig, load_config


class SweepEvents:
    """What a sweep reports as it goes; every method does nothing here (override what you show)."""

    def plan(self, config: SweepConfig, statuses: dict[str, str], root: Path) -> None:
        """Before anything runs: each step's status (state.DONE / MISSING / CHANGED)."""

    def note(self, text: str) -> None:
        """Something the user should know (a stray cell, a skipped simulation pair)."""

    def start(self, total_units: float, num_steps: int) -> None:
        """Steps are about to run (the model loads first); `total_units` weighs them for a time estimate."""

    def step(self, index: int, step: Step) -> None:
        """Step `index` begins."""

    def advance(self, units: float) -> None:
        """The current step did `units` of its work."""

    def step_done(self, index: int, step: Step, result: dict, seconds: float) -> None:
        """Step `index` finished with `result` (a short summary, see `describe`)."""

    def stop(self) -> None:
        """No more steps run (the last finished, or an interruption)."""


QuietEvents = SweepEvents


def read_config(path: Path) -> SweepConfig:
    """The validated config (unknown methods and workloads are one-line errors)."""
    from specscope.engine.proposers import PROPOSERS
    from specscope.workloads.registry import get_workload

    return load_config(path, methods=PROPOSERS, workloads=get_workload)


def run_sweep(config_path: Path, root: Path, dry_run: bool = False, events: SweepEvents | None = None,
              command: str = "sweep") -> dict:
    """Plan, run what is not done, finish (fit, simulate, report); returns the sweep's summary."""
    events = events or QuietEvents()
    config = read_config(config_path)
    if root.exists() and not root.is_dir():
        raise SpecscopeError(f"-o {root}: exists and is not a folder; pass a folder path")
    statuses = {step.name: state.status(root, step) for step in config.steps}
    todo = [s for s in config.steps if statuses[s.name] != state.DONE]
    changed = [s.name for s in todo if statuses[s.name] == state.CHANGED]
    events.plan(config, statuses, root)
    if dry_run:
        return {"command": command, "output": str(root), "config": str(config_path), "dry_run": True,
                "steps": {s.name: statuses[s.name] for s in config.steps}}

    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    state.clean_temporaries(root)
    write_text_atomic(StudyFolder(root).state / "config.toml", config_path.read_text(encoding="utf-8"))
    for name in state.stray_cells(root, config.steps):
        events.note(f"runs/{name} is not in {config_path.name}; it stays and appears in the report "
                    "(delete the folder to drop it)")
    try:
        results = _run_steps(root, todo, events)
    finally:
        events.stop()
    finished = finish_study(root, config, events)
    return {
        "command": command, "output": str(root), "config": str(config_path),
        "steps": len(config.steps), "ran": [s.name for s in todo], "changed": changed,
        "skipped": len(config.steps) - len(todo), "cells": results, **finished,
        "wall_seconds": round(time.perf_counter() - start, 2),
    }


def _run_steps(root: Path, todo: list[Step], events: SweepEvents) -> dict:
    """Run the steps in order; returns a short result per step."""
    from specscope.study.sweep.execute import EngineSession

    if not todo:
        return {}
    session = EngineSession(todo[0].settings)  # every step shares the engine settings (model, device, ...)
    events.start(sum(s.units for s in todo), len(todo))
    session.load()
    results = {}
    for i, step in enumerate(todo):
        events.step(i, step)
        started = time.perf_counter()
        results[step.name] = _run_step(root, step, session, lambda fraction, units=step.units: events.advance(fraction * units))
        seconds = time.perf_counter() - started
        results[step.name]["seconds"] = round(seconds, 2)
        events.step_done(i, step, results[step.name], seconds)
    return results


def _run_step(root: Path, step: Step, session, advance) -> dict:
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
    folder = StudyFolder(root)
    if not folder.profile.is_file():
        raise SpecscopeError(f"{folder.profile}: missing; the adaptive cells decide under the cost model fitted from it "
                             "(run the sweep again: its profile step comes first)")
    if not folder.cost_model.is_file() or folder.cost_model.stat().st_mtime < folder.profile.stat().st_mtime:
        finish.fit_cost(root)
    return folder.cost_model


def describe(result: dict) -> str:
    """A step's result in a few words (throughput, acceptance; trace positions; profile rows)."""
    if "throughput_tok_s" in result:
        acc = result["mean_acc_len"]
        return f"{result['throughput_tok_s']:7.1f} tok/s  acc_len {acc:.2f}" if acc else f"{result['throughput_tok_s']:7.1f} tok/s"
    if "positions" in result:
        means = ", ".join(f"{n} {v:.2f}" for n, v in result["mean_acc_len"].items() if v is not None)
        return f"{result['requests']} requests, {result['positions']} positions, mean acc_len {means}"
    return f"{result.get('rows', 0)} rows"


def finish_study(root: Path, config: SweepConfig, events: SweepEvents) -> dict:
    """Fit the cost model, simulate, write the report: what exists decides what can be done."""
    folder = StudyFolder(root)
    out: dict = {}
    if config.of_kind(PROFILE) and folder.profile.is_file():
        errors = finish.fit_cost(root)
        out["cost_model_fit_error"] = {k: round(v, 4) for k, v in errors.items()}
    traces = [root / s.output for s in config.of_kind(TRACE) if (root / s.output).is_file()]
    if config.simulate is not None and traces:
        rows, skipped, notes = finish.simulate(root, config.simulate, traces)
        out["simulation_rows"] = rows
        out["simulated_traces"] = len(traces)
        out["simulation_skipped"] = skipped
        for note in notes:
            events.note(note)
    try:
        result = finish.report(root)
    except ImportError as err:
        events.note(f"no report: {err}; pip install 'specscope[report]'")
        return out
    out.update(report=str(result.path), figures=result.figures, missing_sections=result.missing)
    return out
