"""What every section shares: the one-line settings each caption ends with, and the "not shown" reasons."""

from __future__ import annotations

import pandas as pd

from specscope.analysis.loaders import Study, trace_workload
from specscope.formats.trace import Trace


def runs_settings(runs: pd.DataFrame) -> str:
    """One line naming the measured cells' model, device, threads, workloads, methods, batch sizes."""
    def values(col):
        return ", ".join(str(v) for v in sorted(runs[col].dropna().unique(), key=str)) or "?"
    partial = int(runs["partial"].sum())
    temperatures = pd.to_numeric(runs["temperature"], errors="coerce").dropna().unique()
    sampling = ("" if not len(temperatures) else "greedy; " if (temperatures == 0).all() else
                f"temperature {', '.join(f'{t:g}' for t in sorted(temperatures))}; ")
    text = (f"Measured: model {values('model')} on {values('device')} ({values('threads')} threads); {sampling}"
            f"workloads {values('workload')}; methods {', '.join(sorted(set(runs['label'])))}; "
            f"batch sizes {', '.join(str(b) for b in sorted(runs['batch_size'].unique()))}; {len(runs)} cells")
    if partial:
        text += f", {partial} of them partial (stopped before every request finished)"
    return text + "."


def trace_settings(trace: Trace) -> str:
    """One line naming a trace's model, hardware, workload, k_max, proposers and size."""
    parts = []
    if trace.model:
        parts.append(f"model {trace.model}")
    if trace.hardware:
        parts.append(f"hardware {trace.hardware}")
    parts.append(f"workload {trace_workload(trace)}")
    parts.append(f"k_max {trace.k_max}" if trace.k_max else "k_max not recorded")
    if trace.extra.get("censored_at"):
        parts.append(f"from a server's steps, censored at {trace.extra['censored_at']} (lower bounds there)")
    parts.append(f"proposers {', '.join(trace.proposers)}")
    parts.append(f"{len(trace.requests)} requests")
    return f"Trace {trace.name}: " + ", ".join(parts) + "."


def simulation_settings(study: Study, simulation: pd.DataFrame) -> str:
    """One line naming the simulated traces, policies, batch sizes, simulator mode and cost model."""
    def values(col):
        return ", ".join(str(v) for v in sorted(simulation[col].dropna().unique(), key=str) if str(v))
    text = (f"Simulated by `specscope simulate`: traces {values('trace')}; policies {values('policy')}; "
            f"batch sizes {', '.join(str(b) for b in sorted(simulation['batch_size'].unique()))}")
    if values("mode"):
        text += f"; mode {values('mode')}"
    named = values("cost_model") if "cost_model" in simulation.columns else ""
    if named:
        text += f"; cost model {named}"
    if study.cost_model is not None:
        text += f" (cost_model.toml: {cost_model_name(study)})"
    elif not named:
        text += "; cost model not recorded (no cost_model column, no cost_model.toml)"
    return text + "."


def cost_model_name(study: Study) -> str:
    """The fitted cost model's name, description and provenance, as the folder records it."""
    model = study.cost_model
    provenance = model.get("provenance") if isinstance(model.get("provenance"), dict) else {}
    parts = [str(model[k]) for k in ("name", "description") if isinstance(model.get(k), str)]
    parts += [f"{k} {provenance[k]}" for k in ("model", "hardware", "engine", "source")
              if isinstance(provenance.get(k), (str, int, float))]
    return "; ".join(parts) or "present"


def no_runs(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "no measured runs (runs/<cell>/summary.json); run `specscope sweep` or `specscope run`."
    return "no measured cell has a `none` cell with the same model, workload and batch size to compare with."


def no_traces() -> str:
    return "no traces (traces/*.jsonl); collect them with `specscope trace` or import SpecDecode-Bench traces."


def no_simulation() -> str:
    return ("no simulation.csv; run `specscope simulate DIR/traces/*.jsonl -o DIR/simulation.csv` (it prices with "
            "DIR/cost_model.toml: fit it first with `specscope fit-cost DIR/profile.csv -o DIR/cost_model.toml`, or "
            "pass --cost-model with a preset of the same model and device).")


def span(values: list[float]) -> str:
    """'1.25x', or '0.95-1.00x' for a range."""
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return f"{low}x" if low == high else f"{low}-{high}x"
