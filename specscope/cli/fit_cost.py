"""`specscope fit-cost PROFILE.csv -o MODEL.toml`: fit a cost model from profiled step timings.

The profile CSV (`specscope/formats/profile.py`) has columns `step_kind, num_batched_tokens, num_kv_tokens,
num_draft_tokens, seconds` and, as `specscope profile` writes it, `batch_size` (sequences per step):
- with batch sizes, the measured surface (`specscope/costs/surface.py`): the target as a surface in
  (tokens, KV, sequences), piecewise linear in tokens through the profiled points (prompt forwards
  apart); each `draft:<proposer>` as a chain of draft passes; `sample` and `overhead` per step,
  token and sequence (and per proposer), folded in where the simulator charges them;
- without, the linear form of the presets: T = c_fixed + c_tok * num_batched_tokens + c_kv * num_kv_tokens,
  drafts c_fixed + c_tok * num_draft_tokens + c_kv * num_kv_tokens (num_draft_tokens counts k + 1 per
  drafting sequence), overhead and sample as per-step means.
Least squares on relative error, coefficients >= 0 (`specscope/costs/fit.py`). Prints each term's
relative error |predicted - measured| / measured on the rows it was fitted on and on held-out rows
(each quarter of a term's rows predicted by a fit on the other three), writes the TOML (`--json`: and
the terms as one JSON line).
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
        for col in ("term", "rows", "coefficients", "mean rel. err", "max rel. err", "held-out mean", "held-out max"):
            table.add_column(col, justify="left" if col in ("term", "coefficients") else "right")
        for t in terms:
            held = t.held_out
            table.add_row(t.kind, str(t.rows), _coefficients(t.coefficients), f"{t.mean_relative_error:.2%}",
                          f"{t.max_relative_error:.2%}", _pct(held.mean if held else None),
                          _pct(held.max if held else None))
        console = Console() if Console().is_terminal else Console(width=200)
        console.print(table)
        console.print(f"wrote {output}")
        print_json(json_out, {
            "command": "fit-cost",
            "output": str(output),
            "name": model.name,
            "terms": {t.kind: {"rows": t.rows, **t.coefficients, "mean_relative_error": t.mean_relative_error,
                               "max_relative_error": t.max_relative_error,
                               "held_out_mean_relative_error": _finite(t.held_out.mean if t.held_out else None),
                               "held_out_max_relative_error": _finite(t.held_out.max if t.held_out else None),
                               "held_out_rows": t.held_out.scored if t.held_out else 0} for t in terms},
        })


def _coefficients(coefficients: dict, most: int = 4) -> str:
    """The first few coefficients, short (the TOML holds them all)."""
    shown = [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in coefficients.items()]
    return ", ".join(shown[:most]) + (", ..." if len(shown) > most else "")


def _pct(value) -> str:
    return "" if value is None or value != value else f"{value:.2%}"


def _finite(value):
    return None if value is None or value != value else value
