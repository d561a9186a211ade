"""Simulate traces: replay them through a cost model into result rows (and `simulation.csv`).

    result = simulate([Path("code.trace.jsonl")], None, ["fixed-3", "oracle"], [1, 8], "llama3.1-8b-h100",
                      output=Path("simulation.csv"))
    result.rows, result.notes, result.skipped

Used by `specscope simulate` and at the end of a sweep. The replays themselves: `specscope/simulator/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from specscope.costs.model import CostModel
from specscope.costs.presets import load_cost_model
from specscope.errors import SpecscopeError
from specscope.formats.simulation import write_simulation
from specscope.formats.trace import FORMATS, Trace, read_trace
from specscope.simulator.memory import fit_batch_sizes
from specscope.tree_spec import TREE_KEY
from specscope.simulator.grid import (MODES, Skipped, count_configs, ngram_match_prob, parse_proposer_set, plan,
                                      run_grid, validate)
from specscope.simulator.replay_trace import ngram_caps_known


@dataclass
class Simulation:
    """What a simulation produced: rows (formats/simulation.py), and what the user should know."""

    rows: list[dict]
    traces: list[Trace]
    costs: CostModel
    sets: list[tuple[str, ...]]
    skipped: list[Skipped] = field(default_factory=list)  # policy x proposer pairs that do not apply
    notes: list[str] = field(default_factory=list)  # dropped requests, n-gram matches, analytic pricing
    capped: list[str] = field(default_factory=list)  # batch sizes that do not fit the cost model's memory


def default_proposer_sets(traces: list[Trace]) -> list[tuple[str, ...]]:
    """Each proposer of the first trace alone, plus its chain proposers combined when there are several (a traced
    tree, `<proposer>@tree:<shape>`, is simulated alone: the `tree` and oracle policies)."""
    names = tuple(traces[0].proposers)
    chains = tuple(p for p in names if TREE_KEY not in p)
    sets = [(p,) for p in names]
    return sets + [chains] if len(chains) > 1 else sets


def simulate(trace_paths: list[Path], proposers: list[str] | None, policies: list[str], batch_sizes: list[int],
             cost_model: str | Path, mode: str = "serve", seed: int = 42, ngram_match: float | None = None,
             trace_format: str | None = None, output: Path | None = None,
             on_progress: Callable[[int], None] | None = None) -> Simulation:
    """Validate everything, replay every applicable configuration, write `output` (when given).
    `on_progress(total)` is called after each configuration (row) with how many there are in all."""
    if mode not in MODES:
        raise SpecscopeError(f"Unknown mode '{mode}'. Available: {', '.join(MODES)}")
    if trace_format is not None and trace_format not in FORMATS:
        raise SpecscopeError(f"Unknown trace format '{trace_format}'. Available: {', '.join(FORMATS)}")
    costs = load_cost_model(cost_model)
    traces = [read_trace(p, trace_format) for p in trace_paths]
    sets = [parse_proposer_set(p) for p in proposers] if proposers else default_proposer_sets(traces)
    validate(traces, sets, policies, batch_sizes, costs, mode, ngram_match)  # every error before any output
    notes = []
    for trace in traces:
        if trace.dropped:
            notes.append(f"{trace.path}: skipped {trace.dropped} request(s) with an empty acc_len list")
        if any("ngram" in s for s in sets):
            if ngram_match is None and ngram_caps_known(trace):
                notes.append(f"{trace.path.name}: n-gram matches looked up in the trace's own tokens")
            else:
                p = ngram_match_prob(trace, ngram_match)
                notes.append(f"{trace.path.name}: n-gram match probability p = {p:g} (fixed-k n-gram misses)")
    if costs.target.form == "roofline":
        notes.append(f"cost model '{costs.name}' is analytic ({costs.description or 'roofline'}): predicted from the "
                     "model's shape and the hardware's datasheet, not measured")
    fits = [fit_batch_sizes(trace, batch_sizes, costs) for trace in traces]
    capped = [fit.note(trace, costs) for trace, fit in zip(traces, fits) if fit.capped]
    _, skipped = plan(sets, policies)
    total = sum(count_configs(sets, policies, fit.sizes, 1) for fit in fits)
    rows = run_grid(traces, sets, policies, batch_sizes, costs, mode=mode, seed=seed, ngram_match_override=ngram_match,
                    on_progress=None if on_progress is None else lambda: on_progress(total))
    if output is not None:
        write_simulation(output, rows)
    return Simulation(rows, traces, costs, sets, skipped, notes, capped)
