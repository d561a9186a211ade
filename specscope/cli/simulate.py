"""`specscope simulate`: replay acceptance traces through a cost model, at any batch size, without a GPU.

    specscope simulate TRACES... --proposers eagle ngram ngram,eagle \\
        --policies fixed-1 fixed-3 fixed-5 oracle adaptive adaptive-combine --batch-sizes 1 8 16 32 64 128 \\
        --cost-model llama3.1-8b-h100 [--mode serve|paper] [--ngram-match-prob P] [--seed 42] -o results.csv

Prints a speedup table (rows: trace x proposers x policy; columns: batch sizes), writes one CSV row
per (trace, proposers, policy, batch size) with the columns of `specscope/formats/simulation.py`,
and with `--json` prints the rows as one JSON line. List options take several values after one flag (or comma-separated,
except --proposers, where a comma combines proposers).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand

from specscope.cli.options import print_json
from specscope.errors import SpecscopeError
from specscope.formats.files import check_output_file
from specscope.simulator.grid import SERVE

DEFAULT_POLICIES = ["fixed-1", "fixed-3", "fixed-5", "oracle"]
DEFAULT_BATCH_SIZES = [1, 8, 16, 32, 64, 128]
DEFAULT_COST_MODEL = "llama3.1-8b-h100"
LIST_OPTIONS = ("--proposers", "--policies", "--batch-sizes")


def expand_list_options(args: list[str], options=LIST_OPTIONS) -> list[str]:
    """`--policies a b c` -> `--policies a --policies b --policies c` (click wants one value per flag).

    Values run until the next option; an existing file path ends the list (it is a positional TRACE).
    """
    out: list[str] = []
    current, have_value = None, False
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            name = arg.split("=", 1)[0]
            current = name if name in options else None
            have_value = current is not None and "=" in arg
            out.append(arg)
        elif current is not None and not (have_value and os.path.exists(arg)):
            if have_value:
                out.append(current)
            out.append(arg)
            have_value = True
        else:
            current = None
            out.append(arg)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class SpaceSeparatedLists(TyperCommand):
    """A Typer command whose list options accept several space-separated values after one flag."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, expand_list_options(list(args)))


def split_commas(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def parse_batch_sizes(values: list[str]) -> list[int]:
    sizes = []
    for v in split_commas(values):
        try:
            sizes.append(int(v))
        except ValueError:
            raise SpecscopeError(f"--batch-sizes: '{v}' is not an integer; e.g. --batch-sizes 1 8 16") from None
        if sizes[-1] < 1:
            raise SpecscopeError(f"--batch-sizes: {sizes[-1]} is not a batch size (>= 1)")
    return sizes


def print_speedup_table(rows: list[dict], console: Console, title: str) -> None:
    """Rows: trace x proposers x policy; columns: batch sizes; cells: speedup."""
    sizes = sorted({r["batch_size"] for r in rows})
    table = Table(title=title, title_justify="left")
    for col in ("trace", "proposers", "policy", "acc_len"):
        table.add_column(col)
    for b in sizes:
        table.add_column(f"B={b}", justify="right")
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (Path(r["trace"]).name, r["proposers"], r["policy"])
        groups.setdefault(key, {"acc": r["mean_acc_len"]})[r["batch_size"]] = r["speedup"]
    for (trace, proposers, policy), cells in groups.items():
        table.add_row(trace, proposers, policy, f"{cells['acc']:.2f}",
                      *(f"{cells[b]:.2f}x" if b in cells else "" for b in sizes))
    console.print(table)


def json_summary(command: str, rows: list[dict], output: Path | None, **extra) -> dict:
    keep = ("trace", "proposers", "policy", "batch_size", "speedup", "mean_acc_len")
    return {
        "command": command,
        **extra,
        "output": str(output) if output is not None else None,
        "configs": len(rows),
        "rows": [{k: r[k] for k in keep} for r in rows],
    }


def simulate_and_report(trace_paths: list[Path], proposers: list[str] | None, policies: list[str],
                        batch_sizes: list[int], cost_model: str, mode: str, ngram_match: float | None, seed: int,
                        trace_format: str | None, output: Path | None, json_out: bool = False) -> list[dict]:
    """Simulate (study layer), print the notes, the table and (with --json) the JSON line."""
    from specscope.study.simulate import simulate

    err = Console(stderr=True)
    out = Console() if Console().is_terminal else Console(width=160)
    if output is not None:
        check_output_file(output, "simulation.csv")
    columns = (TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("simulate", total=None)
        result = simulate(trace_paths, proposers, policies, batch_sizes, cost_model, mode, seed, ngram_match,
                          trace_format, output, on_progress=lambda total: progress.update(task, total=total, advance=1))
    for note in result.notes + result.capped:
        err.print(f"note: {note}")
    for s in result.skipped:
        err.print(f"note: skipped {s.policy} for {s.proposers}: {s.reason}")
    rows = result.rows
    print_speedup_table(rows, out, f"Speedup vs plain decoding ({mode} mode, cost model {result.costs.name})")
    if output is not None:
        out.print(f"wrote {len(rows)} rows to {output}")
    sys.stdout.flush()
    print_json(json_out, json_summary("simulate", rows, output, mode=mode, cost_model=result.costs.name, seed=seed))
    return rows


def register(app: typer.Typer) -> None:
    @app.command("simulate", cls=SpaceSeparatedLists)
    def simulate(
        traces: List[Path] = typer.Argument(..., help="Trace files (native specscope JSONL or SpecDecode-Bench JSONL)."),
        proposers: Optional[List[str]] = typer.Option(
            None, "--proposers", help="Proposer sets, e.g. eagle ngram ngram,eagle (a comma combines). "
            "Default: each proposer of the trace alone, plus all combined."),
        policies: List[str] = typer.Option(DEFAULT_POLICIES, "--policies",
                                           help="fixed-K (K >= 0), oracle, adaptive (one proposer), "
                                           "adaptive-combine (several); the CSV's gap_recovered compares them."),
        batch_sizes: List[str] = typer.Option([str(b) for b in DEFAULT_BATCH_SIZES], "--batch-sizes",
                                              help="Batch sizes to simulate."),
        cost_model: str = typer.Option(DEFAULT_COST_MODEL, "--cost-model",
                                       help="Preset name or path of a cost-model .toml file."),
        mode: str = typer.Option(SERVE, "--mode", help="serve (continuous batching) or paper (published simulator)."),
        ngram_match_prob: Optional[float] = typer.Option(
            None, "--ngram-match-prob", help="P(n-gram found a match | its acc_len is 1), for fixed-k n-gram. "
            "Default: a trace with its tokens and n-gram settings (specscope trace) tells where the n-gram "
            "matched; otherwise the published value for the trace's workload, else 1. Given, it replaces the "
            "trace's own matches."),
        seed: int = typer.Option(42, "--seed", help="Seed for the n-gram miss draws."),
        trace_format: Optional[str] = typer.Option(None, "--trace-format",
                                                   help="specscope or specdecode-bench (default: detected)."),
        output: Optional[Path] = typer.Option(None, "-o", "--output", help="Result CSV to write."),
        json_out: bool = typer.Option(False, "--json", help="Also print the rows as one JSON line (stable keys)."),
    ) -> None:
        """Replay acceptance traces through a cost model: fixed-k, oracle and oracle-combine speedups."""
        simulate_and_report(traces, proposers, split_commas(policies), parse_batch_sizes(batch_sizes),
                            cost_model, mode, ngram_match_prob, seed, trace_format, output, json_out)
