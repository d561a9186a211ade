"""`specscope demo [-o DIR]`: simulate the shipped trace end to end and print the speedup table.

Runs the real simulator (serve mode, the published Llama-3.1-8B/H100 cost model) on
`specscope/data/demo_trace.jsonl` — a small SYNTHETIC trace made by `scripts/make_demo_trace.py` until
the engine records real ones — for n-gram, EAGLE and their combination, fixed-k and oracle policies,
batch sizes 1 to 128. Writes DIR/simulation.csv (default DIR: specscope-out) and ends with one JSON line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from specscope.commands.simulate import (DEFAULT_BATCH_SIZES, DEFAULT_COST_MODEL, DEFAULT_POLICIES,
                                         simulate_and_report)
from specscope.simulator.sweep import MODES, SERVE

DEMO_TRACE = Path(__file__).resolve().parent.parent / "data" / "demo_trace.jsonl"
DEFAULT_OUT = Path("specscope-out")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out_dir: Path = typer.Option(DEFAULT_OUT, "-o", "--out", help="Folder for the results."),
        mode: str = typer.Option(SERVE, "--mode", help=f"Replay mode: {' or '.join(MODES)}."),
    ) -> None:
        """Simulate the shipped demo trace (fixed-k, oracle, combine; batch sizes 1-128)."""
        simulate_and_report(
            [DEMO_TRACE],
            ["ngram", "eagle", "ngram,eagle"],
            DEFAULT_POLICIES,
            DEFAULT_BATCH_SIZES,
            DEFAULT_COST_MODEL,
            mode,
            None,
            42,
            None,
            out_dir / "simulation.csv",
            command="demo",
        )
