"""The end of a sweep: fit the cost model, simulate the traces, write the report (no torch).

Each function does what its CLI verb does (`fit-cost`, `simulate`, `report`) on the study folder's
standard paths and returns a short summary for the sweep's table; they are cheap (seconds) and
re-run at the end of every sweep, so they always describe the folder's current cells and traces.
"""

from __future__ import annotations

from pathlib import Path

from specscope.formats.layout import StudyFolder
from specscope.study.sweep.config import FITTED, SimulateSpec


def fit_cost(root: Path) -> dict:
    """Fit `cost_model.toml` from `profile.csv`; returns the mean relative error per term."""
    from specscope.costs.fit import fit_profile_file

    folder = StudyFolder(root)
    _, terms = fit_profile_file(folder.profile, folder.cost_model, "fitted", "specscope sweep")
    return {t.kind: t.mean_relative_error for t in terms}


def simulate(root: Path, spec: SimulateSpec, trace_paths: list[Path]) -> tuple[int, list[str], list[str]]:
    """Replay the traces into `simulation.csv` (and the cost model, unless fitted, into
    `simulation_cost_model.toml`, which the report reads); returns (rows written, notes on skipped pairs,
    notes on batch sizes capped to the cost model's memory)."""
    from specscope.costs.presets import write_cost_model
    from specscope.study.simulate import simulate as run

    folder = StudyFolder(root)
    result = run(trace_paths, spec.proposers, spec.policies, spec.batch_sizes,
                 folder.cost_model if spec.cost_model == FITTED else spec.cost_model, spec.mode, spec.seed,
                 output=folder.simulation)
    if spec.cost_model == FITTED:
        folder.simulation_cost_model.unlink(missing_ok=True)
    else:
        write_cost_model(folder.simulation_cost_model, result.costs,
                         header_comment=f"The cost model `specscope sweep` simulated under: {spec.cost_model}")
    return len(result.rows), [f"{s.policy} for {s.proposers}: {s.reason}" for s in result.skipped], result.capped


def report(root: Path):
    """Write `report.html`; returns the analysis package's `ReportResult`."""
    from specscope.analysis.report import write_report

    return write_report(root)
