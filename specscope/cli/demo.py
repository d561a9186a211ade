"""`specscope demo [-o DIR]`: the whole study on this machine, from measurements to the HTML report.

Runs the shipped sweep `specscope/configs/demo.toml` (= `specscope sweep specscope/configs/demo.toml
-o DIR`): the embedded default model on the bundled workloads; plain decoding, n-gram, a self-draft (a
chain and a tree) and the shipped EAGLE-3 head; per-position traces; a profile and the fitted cost model;
simulation at batch sizes 1-128; and DIR/report.html (default DIR: specscope-out). Running it again
resumes (finished cells are kept). Prints the verdict and the report's path (`--json`: and the result as
one JSON line, keys in docs/formats.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from specscope.cli.options import print_json
from specscope.configs import DEMO_CONFIG

DEFAULT_OUT = Path("specscope-out")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out_dir: Path = typer.Option(DEFAULT_OUT, "-o", "--out", "--output", help="Study folder (resumed if it exists)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="List the demo's steps and which are done; run nothing."),
        json_out: bool = typer.Option(False, "--json", help="Also print the result as one JSON line."),
    ) -> None:
        """Measure, trace, profile, simulate and report on the default model (about 8 minutes on an idle 2-core CPU)."""
        from specscope.cli.sweep import run_and_print

        result = run_and_print(DEMO_CONFIG, out_dir, dry_run, "demo")
        if "report" in result:
            print(f"open {result['report']}")
        print_json(json_out, result)
