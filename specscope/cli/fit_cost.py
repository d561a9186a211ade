"""`specscope fit-cost PROFILE.csv -o MODEL.toml`: fit a cost model from profiled step timings.

The profile CSV (`specscope/formats/profile.py`) has columns `step_kind, num_batched_tokens, num_kv_tokens,
num_draft_tokens, seconds`:
- step_kind `target` / `prefill` / `decode` / `verify`: a target forward pass; fitted as
  T = c_fixed + c_tok * num_batched_tokens + c_kv * num_kv_tokens;
- `draft:<proposer>` (e.g. `draft:eagle`): a draft step; fitted as
  c_fixed + c_tok * num_draft_tokens + c_kv * num_kv_tokens, where num_draft_tokens counts k + 1
  per drafting sequence (the convention the simulator uses, see specscope/costs/model.py);
- `overhead` / `sample`: per-step host work; their means add up to the per-step overhead.
Least squares on relative error, coefficients >= 0 (`specscope/costs/fit.py`). Prints each term's
coefficients and its relative error |predicted - measured| / measured, writes the TOML (`--json`:
and the terms as one JSON line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from specscope.cli.options import print_json
from specscope.formats.files import check_output_file


def register(app: typer.Typer) -> None:
    @app.command("fit-cost")
    def fit_cost(
        profile: Path = typer.Argument(..., help="Profile CSV written by `specscope profile`."),
        output: Path = typer.Option(..., "-o", "--output", help="Cost-model TOML file to write."),
        name: Optional[str] = typer.Option(None, "--name", help="Cost model name (default: the output file's stem)."),
        json_out: bool = typer.Option(False, "--json", help="Also print the fitted terms as one JSON line."),
    ) -> None:
        """Fit a cost model (target, draft, overhead) from a profile CSV; report the fit's relative error."""
        from specscope.costs.fit import fit_profile_file

        check_output_file(output, "cost.toml")
        model, terms = fit_profile_file(profile, output, name or output.stem, "specscope fit-cost")
        table = Table(title=f"Cost model '{model.name}' fitted from {profile}", title_justify="left")
        for col in ("term", "rows", "c_fixed", "c_tok", "c_kv", "mean rel. err", "max rel. err"):
            table.add_column(col, justify="left" if col == "term" else "right")
        for t in terms:
            c = t.coefficients
            fixed = c.get("c_fixed", c.get("seconds"))
            table.add_row(t.kind, str(t.rows), f"{fixed:.4e}",
                          f"{c['c_tok']:.4e}" if "c_tok" in c else "", f"{c['c_kv']:.4e}" if "c_kv" in c else "",
                          f"{t.mean_relative_error:.2%}", f"{t.max_relative_error:.2%}")
        console = Console()
        console.print(table)
        console.print(f"wrote {output}")
        print_json(json_out, {
            "command": "fit-cost",
            "output": str(output),
            "name": model.name,
            "terms": {t.kind: {"rows": t.rows, **t.coefficients, "mean_relative_error": t.mean_relative_error,
                               "max_relative_error": t.max_relative_error} for t in terms},
        })
