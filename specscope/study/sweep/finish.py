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
    """Fit `cost_model.toml` from `profile.csv`; returns the mean relative error per term, and the held-out one
    under `held_out:<term>` where it could be scored."""
    from specscope.costs.fit import fit_profile_file

    folder = StudyFolder(root)
    _, terms = fit_profile_file(folder.profile, folder.cost_model, "fitted", "specscope sweep")
    errors = {t.kind: t.mean_relative_error for t in terms}
    errors.update({f"held_out:{t.kind}": t.held_out_error for t in terms if t.held_out_error == t.held_out_error})
    return errors


def simulate(root: Path, spec: SimulateSpec, trace_paths: list[Path]) -> tuple[int, list[str]]:
    """Replay the traces into `simulation.csv`; returns (rows written, notes on skipped pairs)."""
    from specscope.study.simulate import simulate as run

    folder = StudyFolder(root)
    result = run(trace_paths, spec.proposers, spec.policies, spec.batch_sizes,
                 folder.cost_model if spec.cost_model == FITTED else spec.cost_model, spec.mode, spec.seed,
                 output=folder.simulation)
    return len(result.rows), [f"{s.policy} for {s.proposers}: {s.reason}" for s in result.skipped]


def twins(root: Path, spec: SimulateSpec) -> tuple[int, list[str]]:
    """Simulate each measured cell's twin (its own requests, batch size and policy) into `twins.csv`; returns
    (rows written, notes on cells without one)."""
    from specscope.study.twins import simulate_twins

    folder = StudyFolder(root)
    cost_model = folder.cost_model if spec.cost_model == FITTED else spec.cost_model
    rows, notes = simulate_twins(root, cost_model, seed=spec.seed)
    return len(rows), notes


def report(root: Path):
    """Write `report.html`; returns the analysis package's `ReportResult`."""
    from specscope.analysis.report import write_report

    return write_report(root)
