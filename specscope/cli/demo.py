"""`specscope demo [-o DIR]`: the whole study on this machine, from measurements to the HTML report.

Runs the shipped sweep `specscope/configs/demo.toml` (= `specscope sweep specscope/configs/demo.toml
-o DIR`): the embedded default model on the bundled code-edit, chat and math workloads; none, ngram
and a self-draft at k = 3 and batch sizes 1, 4 and 16; per-position traces; a profile and the
fitted cost model; simulation of fixed-k, oracle and oracle combine at batch sizes 1-128; and
DIR/report.html (default DIR: specscope-out). Aimed at about 6 minutes on an idle 2-core CPU; running it again
resumes (finished cells are kept). Prints the report's path; the last line is JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from specscope.configs import DEMO_CONFIG

DEFAULT_OUT = Path("specscope-out")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out_dir: Path = typer.Option(DEFAULT_OUT, "-o", "--out", "--output", help="Study folder (resumed if it exists)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="List the demo's steps and which are done; run nothing."),
    ) -> None:
        """Measure, trace, profile, simulate and report on the default model (about 6 minutes on 2 CPU cores)."""
        from specscope.cli.sweep import run_sweep

        result = run_sweep(DEMO_CONFIG, out_dir, dry_run=dry_run, command="demo")
        if "report" in result:
            print(f"open {result['report']}")
        print(json.dumps(result), flush=True)
