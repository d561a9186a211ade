"""`specscope sweep CONFIG.toml -o DIR`: run a grid of measured cells, traces and a profile, then report.

    specscope sweep specscope/configs/demo.toml -o study        # what `specscope demo` runs
    specscope sweep my.toml -o study --dry-run                  # list the steps and what is done

The config (format: `specscope/study/sweep/config.py`) expands into steps: measured cells
(runs/<cell>/), traces (traces/<workload>.jsonl) and a profile (profile.csv). They run in one
process on one loaded target, with a progress bar and an estimate of the time left. Each cell's
folder appears whole or not at all; running the same command again skips finished steps (resume
after Ctrl-C or a crash), and re-runs a step whose settings changed in the config. At the end it
fits cost_model.toml, simulates the traces into simulation.csv and writes report.html. Prints a
table of what ran (`--json`: and the result as one JSON line). The job itself: `specscope/study/sweep/run.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from specscope.cli.options import JsonOpt, print_json
from specscope.study.sweep import state
from specscope.study.sweep.config import PROFILE, RUN, TRACE, SweepConfig
from specscope.study.sweep.run import SweepEvents, describe, run_sweep

KIND_NAMES = {RUN: "measured cells", TRACE: "traces", PROFILE: "profile"}


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


def sweep(
    config: Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="Sweep config (see specscope/configs/demo.toml).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Study folder to write (and resume).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the steps and which are done; run nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run a sweep config's cells, traces and profile (resumable), then fit, simulate and report."""
    result = run_and_print(config, output, dry_run, "sweep")
    print_json(json_out, result)


def run_and_print(config: Path, output: Path, dry_run: bool, command: str) -> dict:
    """Run the sweep with a progress bar and print its plan, steps and summary (shared with `demo`)."""
    console = Console()
    events = ConsoleEvents(console)
    try:
        result = run_sweep(config, output, dry_run=dry_run, events=events, command=command)
    except KeyboardInterrupt:
        Console(stderr=True).print(f"specscope: interrupted; finished steps are kept in {output}. "
                                   "Run the same command again to resume.", soft_wrap=True)
        raise typer.Exit(130)
    if not dry_run:
        _print_summary(console, events.config, result)
    return result


class ConsoleEvents(SweepEvents):
    """The sweep's plan, a progress bar over its steps and one line per finished step, on a rich console."""

    def __init__(self, console: Console):
        self.console, self.config, self.progress, self.task = console, None, None, None

    def plan(self, config: SweepConfig, statuses: dict, root: Path) -> None:
        self.config = config
        parts = []
        for kind, label in KIND_NAMES.items():
            steps = config.of_kind(kind)
            if steps:
                done = sum(statuses[s.name] == state.DONE for s in steps)
                parts.append(f"{len(steps)} {label} ({done} done)")
        self.console.print(f"sweep {config.path} -> {root}: " + ", ".join(parts), soft_wrap=True)
        for name, st in statuses.items():
            if st == state.CHANGED:
                self.console.print(f"  {name}: settings changed since it ran; it will run again", soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]note: {text}[/yellow]", soft_wrap=True)

    def start(self, total_units: float, num_steps: int) -> None:
        columns = (TextColumn("{task.description:<36}"), BarColumn(), TextColumn("{task.fields[done]}/{task.fields[steps]} steps"),
                   TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
        self.progress = Progress(*columns, console=Console(stderr=True), transient=True, speed_estimate_period=600)
        self.progress.start()
        self.task = self.progress.add_task("loading the model", total=total_units, done=0, steps=num_steps)
        self._before = 0.0

    def step(self, index: int, step) -> None:
        self.progress.update(self.task, description=step.name)
        self._before = self.progress.tasks[0].completed

    def advance(self, units: float) -> None:
        self.progress.advance(self.task, units)

    def step_done(self, index: int, step, result: dict, seconds: float) -> None:
        self.progress.update(self.task, completed=self._before + step.units, done=index + 1)
        self.progress.console.print(f"  {step.name:<36} {describe(result)} ({seconds:.1f} s)", soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _print_summary(console: Console, config: SweepConfig, result: dict) -> None:
    if "cost_model_fit_error" in result:
        errors = result["cost_model_fit_error"]
        terms = [k for k in errors if not k.startswith("held_out:")]
        console.print("fitted cost_model.toml (mean relative error, fitted rows / held out: "
                      + ", ".join(f"{k} {errors[k]:.1%}" + (f" / {errors['held_out:' + k]:.1%}"
                                                            if f"held_out:{k}" in errors else "") for k in terms) + ")",
                      soft_wrap=True)
    if result.get("twins"):
        console.print(f"simulated twins of {result['twins']} measured cells (their own requests) in twins.csv")
    if "simulation_rows" in result:
        skipped = result["simulation_skipped"]
        console.print(f"simulated {result['simulated_traces']} trace(s): {result['simulation_rows']} rows in "
                      "simulation.csv" + (f"; {len(skipped)} policy x proposer pair(s) do not apply and were left out"
                                          if skipped else ""), soft_wrap=True)
    ran = set(result["ran"])
    table = Table(title=f"specscope sweep: {result['wall_seconds']:.0f} s", title_justify="left")
    for col in ("steps", "total", "ran", "already done"):
        table.add_column(col, justify="left" if col == "steps" else "right")
    for kind, label in KIND_NAMES.items():
        steps = config.of_kind(kind)
        if steps:
            n_ran = sum(s.name in ran for s in steps)
            table.add_row(label, str(len(steps)), str(n_ran), str(len(steps) - n_ran))
    console.print(table)
    if result.get("verdict"):
        from specscope.analysis.sections.front import verdict_line

        console.print("verdict (details, with latency and the evidence, in the report):")
        for row in result["verdict"]:
            console.print(f"  {verdict_line(row)}", soft_wrap=True, highlight=False)
    if "report" in result:
        missing = result["missing_sections"]
        console.print(f"report: {result['report']} ({result['figures']} figures"
                      + (f"; sections without data: {', '.join(missing)}" if missing else "") + ")", soft_wrap=True)
