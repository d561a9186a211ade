"""The end of a sweep: fit the cost model, simulate the traces, write the report (no torch).

Each function does what its CLI verb does (`fit-cost`, `simulate`, `report`) on the study folder's
standard paths and returns a short summary for the sweep's table; they are cheap (seconds) and
re-run at the end of every sweep, so they always describe the folder's current cells and traces.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from specscope.analysis.loaders import COST_MODEL_TOML, PROFILE_CSV, SIMULATION_COST_MODEL_TOML, SIMULATION_CSV
from specscope.formats.files import atomic_open
from specscope.study.sweep.config import FITTED, SimulateSpec


def fit_cost(root: Path) -> dict:
    """Fit `cost_model.toml` from `profile.csv`; returns the mean relative error per term."""
    from specscope.costs.fit import fit_cost_model
    from specscope.formats.profile import read_profile
    from specscope.formats.cost_model import write_cost_model

    profile = root / PROFILE_CSV
    model, terms = fit_cost_model(read_profile(profile), "fitted", source=str(profile))
    write_cost_model(root / COST_MODEL_TOML, model,
                     header_comment=f"Cost model fitted by `specscope sweep` from {profile}.\n"
                     "Forms and units: see specscope/costs.py (seconds).")
    return {t.kind: t.mean_relative_error for t in terms}


def simulate(root: Path, spec: SimulateSpec, trace_paths: list[Path]) -> tuple[int, list[str], list[str]]:
    """Replay the traces into `simulation.csv` (and the cost model, unless fitted, into
    `simulation_cost_model.toml`); returns (rows written, notes on skipped pairs, notes on batch sizes capped
    because they do not fit in the cost model's memory)."""
    from specscope.costs.presets import load_cost_model
    from specscope.formats.cost_model import write_cost_model
    from specscope.formats.trace import read_trace
    from specscope.simulator.grid import COLUMNS, parse_proposer_set, plan, run_sweep
    from specscope.simulator.memory import fit_batch_sizes

    costs = load_cost_model(root / COST_MODEL_TOML if spec.cost_model == FITTED else spec.cost_model)
    traces = [read_trace(p) for p in trace_paths]
    sets = [parse_proposer_set(p) for p in spec.proposers]
    rows = run_sweep(traces, sets, spec.policies, spec.batch_sizes, costs, mode=spec.mode, seed=spec.seed)
    used = root / SIMULATION_COST_MODEL_TOML  # the report reads which cost model priced the simulation
    if spec.cost_model == FITTED:
        used.unlink(missing_ok=True)
    else:
        write_cost_model(used, costs, header_comment=f"The cost model `specscope sweep` simulated under: {spec.cost_model}")
    capped = [fit.note(t, costs) for t in traces if (fit := fit_batch_sizes(t, spec.batch_sizes, costs)).capped]
    with atomic_open(root / SIMULATION_CSV) as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    _, skipped = plan(sets, spec.policies)
    return len(rows), [f"{s.policy} for {s.proposers}: {s.reason}" for s in skipped], capped


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def report(root: Path):
    """Write `report.html`; returns the analysis package's `ReportResult`."""
    from specscope.analysis.report import write_report

    return write_report(root)

