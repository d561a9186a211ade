"""Simulate traces: replay them through a cost model into result rows (and `simulation.csv`).

    result = simulate([Path("code.trace.jsonl")], None, ["fixed-3", "oracle"], [1, 8], "llama3.1-8b-h100",
                      output=Path("simulation.csv"))
    result.rows, result.notes, result.skipped

Used by `specscope simulate` and at the end of a sweep. The replays themselves: `specscope/simulator/`.

The cost model is always explicit: `cost_model=None` means the fitted `cost_model.toml` of the study
folder the traces belong to (DIR/traces/*.jsonl -> DIR/cost_model.toml), and is an error naming the
presets where there is none; a trace priced with a cost model of another model or device gets a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from specscope.costs.model import CostModel
from specscope.costs.presets import available_presets, load_cost_model
from specscope.errors import SpecscopeError
from specscope.formats.layout import COST_MODEL_TOML
from specscope.formats.simulation import write_simulation
from specscope.formats.trace import FORMATS, Trace, read_trace
from specscope.simulator.memory import fit_batch_sizes
from specscope.tree_spec import TREE_KEY
from specscope.simulator.grid import (MODES, Skipped, count_configs, ngram_match_prob, parse_proposer_set, plan,
                                      run_grid, validate)
from specscope.simulator.replay_trace import ngram_caps_known
from specscope.simulator.resample import serve_requests

FITTED_COST_MODEL = COST_MODEL_TOML  # a study folder's fitted cost model


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


def study_cost_model(trace_paths: list[Path]) -> Path:
    """The fitted cost model of the study folder the traces belong to (DIR/traces/X.jsonl -> DIR/cost_model.toml);
    a one-line error naming the presets where there is none, or where the traces come from several folders."""
    found = set()
    for path in trace_paths:
        path = Path(path).resolve()
        folder = path.parent.parent if path.parent.name == "traces" else path.parent
        fitted = folder / FITTED_COST_MODEL
        if not fitted.is_file():
            raise SpecscopeError(
                f"no --cost-model given and {path.name} is not in a study folder with a fitted {FITTED_COST_MODEL}; "
                f"pass --cost-model with a preset ({', '.join(available_presets())}) or a cost-model .toml "
                "(`specscope fit-cost PROFILE.csv -o cost.toml` fits one for this machine)")
        found.add(fitted)
    if len(found) > 1:
        raise SpecscopeError(f"no --cost-model given and the traces come from {len(found)} study folders with "
                             f"different fitted cost models; pass --cost-model (presets: {', '.join(available_presets())})")
    return found.pop()


def origin_notes(traces: list[Trace], costs: CostModel) -> list[str]:
    """A note per trace recorded with another model or on another device than the cost model prices."""
    provenance = costs.provenance if isinstance(costs.provenance, dict) else {}
    priced_model, priced_device = provenance.get("model"), provenance.get("hardware")
    notes = []
    for trace in traces:
        differ = []
        if trace.model and isinstance(priced_model, str) and _model_key(trace.model) != _model_key(priced_model):
            differ.append(f"model {trace.model} (cost model: {priced_model})")
        if trace.hardware and isinstance(priced_device, str) and trace.hardware != priced_device:
            differ.append(f"device {trace.hardware} (cost model: {priced_device})")
        if differ:
            notes.append(f"{trace.name}: priced with cost model '{costs.name}' of another " + " and ".join(differ))
    return notes


def _model_key(name: str) -> str:
    """A model name compared loosely: no organisation prefix, no file extension, no -instruct, lower case."""
    key = Path(str(name)).name.lower()
    for suffix in (".gguf", "-instruct"):
        key = key.removesuffix(suffix)
    return key


def simulate(trace_paths: list[Path], proposers: list[str] | None, policies: list[str], batch_sizes: list[int],
             cost_model: str | Path | None, mode: str = "serve", seed: int = 42, ngram_match: float | None = None,
             trace_format: str | None = None, output: Path | None = None,
             on_progress: Callable[[int], None] | None = None, num_requests: int | None = None) -> Simulation:
    """Validate everything, replay every applicable configuration, write `output` (when given).
    `on_progress(total)` is called after each configuration (row) with how many there are in all.
    `cost_model` None: the traces' study folder's fitted model (`study_cost_model`). `num_requests`: serve-mode
    resampling (`specscope/simulator/resample.py`; None = its default, 0 = off)."""
    if mode not in MODES:
        raise SpecscopeError(f"Unknown mode '{mode}'. Available: {', '.join(MODES)}")
    if trace_format is not None and trace_format not in FORMATS:
        raise SpecscopeError(f"Unknown trace format '{trace_format}'. Available: {', '.join(FORMATS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecscopeError(f"--seed {seed}: must be an integer >= 0 (it seeds the n-gram miss draws and the "
                             "resampling)")
    if num_requests is not None and (isinstance(num_requests, bool) or not isinstance(num_requests, int)
                                     or num_requests < 0):
        raise SpecscopeError(f"--num-requests must be an integer >= 0 (0: never resample), got {num_requests}")
    notes = []
    traces = [read_trace(p, trace_format) for p in trace_paths]
    if cost_model is None:
        cost_model = study_cost_model(trace_paths)
        notes.append(f"priced with the study folder's fitted cost model {cost_model}")
    costs = load_cost_model(cost_model)
    sets = [parse_proposer_set(p) for p in proposers] if proposers else default_proposer_sets(traces)
    validate(traces, sets, policies, batch_sizes, costs, mode, ngram_match)  # every error before any output
    notes += origin_notes(traces, costs)
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
    if mode == "serve":  # a bad --num-requests is an error before any output, too
        for trace, fit in zip(traces, fits):
            for b in fit.sizes:
                serve_requests(b, len(trace.requests), num_requests)
    capped = [fit.note(trace, costs) for trace, fit in zip(traces, fits) if fit.capped]
    _, skipped = plan(sets, policies)
    total = sum(count_configs(sets, policies, fit.sizes, 1) for fit in fits)
    rows = run_grid(traces, sets, policies, batch_sizes, costs, mode=mode, seed=seed, ngram_match_override=ngram_match,
                    on_progress=None if on_progress is None else lambda: on_progress(total), num_requests=num_requests)
    notes += resampling_notes(rows)
    if output is not None:
        write_simulation(output, rows)
    return Simulation(rows, traces, costs, sets, skipped, notes, capped)


def resampling_notes(rows: list[dict]) -> list[str]:
    """One note per trace whose serve-mode batch sizes were simulated with resampled requests."""
    by_trace: dict[str, list] = {}
    for r in rows:
        if r["requests"] != r["distinct_requests"]:
            by_trace.setdefault(Path(r["trace"]).name, []).append(r)
    notes = []
    for name, resampled in by_trace.items():
        sizes = sorted({r["batch_size"] for r in resampled})
        counts = sorted({r["requests"] for r in resampled})
        notes.append(f"{name}: batch size(s) {', '.join(map(str, sizes))} exceed its {resampled[0]['distinct_requests']} "
                     f"distinct requests; simulated with {'/'.join(map(str, counts))} requests resampled from them "
                     "(--num-requests; the CSV's distinct_requests column)")
    return notes
