"""Simulated twins: replay every measured cell's own requests at its batch size with its policy (no torch).

    rows, notes = simulate_twins(Path("study"), cost_model=Path("study/cost_model.toml"))  # and writes twins.csv

A measured cell (`runs/<cell>/`: summary.json, requests.jsonl) ran some prompts of a workload with one
method at one batch size; the sweep traces the same prompts (`[trace]` without num_prompts records
the union of the cells' prompt sets). Its twin is the trace restricted to the cell's request ids,
simulated in serve mode at the cell's batch size with the cell's policy — `fixed-<k>` of its proposer,
or `adaptive` / `adaptive-combine` of its proposer set — under the study's cost model. Comparing
the twin's speedup with the measured one is the simulator's fidelity on exactly what was measured,
free of the prompt-to-prompt variation that comparing with another prompt set would add.

Cells without a twin are listed in the notes: plain decoding (`none`, the speedups' denominator),
repeats after the first (same requests), a method no trace holds, or requests the trace lacks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from specscope.costs.presets import load_cost_model
from specscope.errors import SpecscopeError
from specscope.formats.files import read_jsonl_objects
from specscope.formats.layout import REQUESTS_JSONL, SUMMARY_JSON, StudyFolder
from specscope.formats.summary import read_summary
from specscope.formats.trace import Trace, read_trace
from specscope.formats.twins import write_twins
from specscope.settings import BASELINE
from specscope.simulator.grid import SERVE, run_grid
from specscope.tree_spec import tree_key

def cell_policy(summary: dict) -> tuple[tuple[str, ...], str, int | None] | None:
    """(proposer set, simulator policy, k) a measured cell ran; None for plain decoding. A tree cell replays its
    traced tree key (`<proposer>@tree:<shape>`) under policy `tree` (the whole tree verified every step)."""
    names = tuple(p for p in str(summary.get("method") or "").split(",") if p)  # the registry name(s)
    if not names or names == (BASELINE,):
        return None
    if summary.get("tree"):
        return ((tree_key(names[0], str(summary["tree"])),), "tree", None) if len(names) == 1 else None
    if summary.get("adaptive"):
        return names, "adaptive" if len(names) == 1 else "adaptive-combine", None
    k = int(summary.get("k") or 0)
    return (names, f"fixed-{k}", k) if len(names) == 1 and k > 0 else None


def request_ids(path: Path) -> list[str]:
    """Ids of a cell's completed requests."""
    return [str(rec.get("id")) for _, rec in read_jsonl_objects(path) if not rec.get("error")]


def simulate_twins(root: Path, cost_model: str | Path, seed: int = 42, output: Path | None = None
                   ) -> tuple[list[dict], list[str]]:
    """One twin row per measured SD cell the traces cover (module docstring); writes `output` (default
    root/twins.csv) when there is at least one. Returns (rows, notes on cells left without a twin)."""
    folder = StudyFolder(Path(root))
    costs = load_cost_model(cost_model)
    traces: dict[str, Trace] = {}
    for path in sorted(folder.traces.glob("*.jsonl")) if folder.traces.is_dir() else []:
        trace = read_trace(path)
        workload = trace.workload or (trace.requests[0].workload if trace.requests else None) or path.stem
        traces.setdefault(str(workload), trace)
    rows, notes = [], []
    cells = sorted(p for p in folder.runs.iterdir() if p.is_dir()) if folder.runs.is_dir() else []
    for cell in cells:
        if not (cell / SUMMARY_JSON).is_file():
            continue
        summary = read_summary(cell / SUMMARY_JSON)
        ran = cell_policy(summary)
        if ran is None or int(summary.get("repeat") or 1) != 1:
            continue
        proposers, policy, k = ran
        trace = traces.get(str(summary.get("workload")))
        if trace is None or any(p not in trace.proposers for p in proposers):
            notes.append(f"{cell.name}: no trace of workload {summary.get('workload')} with {','.join(proposers)}")
            continue
        ids = request_ids(cell / REQUESTS_JSONL) if (cell / REQUESTS_JSONL).is_file() else []
        by_id = {r.id: r for r in trace.requests}
        missing = [i for i in ids if i not in by_id]
        if not ids or missing:
            notes.append(f"{cell.name}: the trace lacks {len(missing) or 'its'} request(s) "
                         f"{', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}; trace the cells' prompts")
            continue
        wanted = set(ids)
        twin = replace(trace, requests=[r for r in trace.requests if r.id in wanted])
        try:
            row = run_grid([twin], [proposers], [policy], [int(summary["batch_size"])], costs, mode=SERVE, seed=seed,
                           num_requests=0)[0]
        except SpecscopeError as err:
            notes.append(f"{cell.name}: {err}")
            continue
        rows.append({"cell": cell.name, "k": k, **row})
    if rows:
        write_twins(output or folder.twins, rows)
    return rows, notes
