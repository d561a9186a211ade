"""Calibrate the analytic model's efficiencies against measured (or published) target step times.

    from specscope.costs.calibrate import calibrate
    cal = calibrate(shape, hardware, precision, tokens, kv, seconds, hold={"layer_latency_s": 0.0})

Given step times T at points (tokens, kv) of one model on one device, find the constants of the
roofline form (`specscope/costs/analytic.py`) that minimise the relative error |pred - T| / T:
weight_bandwidth, kv_bandwidth and compute efficiencies, layer_latency_s, and overlap.

For a fixed overlap the form is linear in (layer latency, 1 / each efficiency) once it is known which
of memory and compute is larger at each point, so: for each overlap on a grid (0, 0.05, ... 1),
alternate a non-negative least-squares fit (`costs.fit.nonnegative_least_squares`) with re-deciding
the larger term, until the assignment stops changing; keep the overlap with the least error.
`hold` fixes constants instead of fitting them (with one model the per-layer latency and the weight
bandwidth are not separable: both are constant per step, so one of them must be held).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from specscope.costs.efficiency import Efficiencies
from specscope.costs.fit import nonnegative_least_squares
from specscope.costs.hardware import HardwareSpec
from specscope.costs.shapes import ModelShape, Precision
from specscope.errors import SpecscopeError

OVERLAPS = np.round(np.linspace(0.0, 1.0, 21), 2)
PARAMS = ("layer_latency_s", "weight_bandwidth", "kv_bandwidth", "compute")


@dataclass(frozen=True)
class Calibration:
    weight_bandwidth: float
    kv_bandwidth: float
    compute: float
    overlap: float
    layer_latency_s: float
    points: int
    mean_relative_error: float
    max_relative_error: float
    by_overlap: dict[float, float]  # overlap -> mean relative error of its best fit

    def apply(self, base: Efficiencies, provenance: dict | None = None) -> Efficiencies:
        """`base` with the calibrated constants replaced."""
        return Efficiencies(self.weight_bandwidth, self.kv_bandwidth, self.compute, self.overlap,
                            self.layer_latency_s, base.step_overhead_s, base.ngram_fraction,
                            base.memory_utilization, provenance if provenance is not None else base.provenance)


def _columns(shape: ModelShape, hardware: HardwareSpec, precision: Precision, tokens, kv, tp: int):
    """Parts of the form with unit efficiencies: [layers, weights, KV traffic, matmuls, attention], and the
    all-reduce seconds (not calibrated here)."""
    from specscope.costs.pricing import roofline

    unit = Efficiencies(1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    form = roofline(shape, hardware, precision, unit, tp)
    ones = np.ones_like(tokens)
    parts = np.column_stack([
        shape.num_layers * ones,
        form.weight_bytes / form.bandwidth * ones,
        form.kv_bytes_per_token * (kv + tokens) / form.bandwidth,
        form.flops_per_token * tokens / form.peak_flops,
        form.attention_flops_per_kv * kv / form.peak_flops,
    ])
    return parts, form.fixed_s + form.comm_s(tokens)


def _predict(parts: np.ndarray, coef: np.ndarray, overlap: float):
    """(seconds without all-reduce, weights >= matmuls, KV traffic >= attention) at coefficients
    [latency, 1/e_w, 1/e_kv, 1/e_c]."""
    weights, kv = parts[:, 1] * coef[1], parts[:, 2] * coef[2]
    matmul, attention = parts[:, 3] * coef[3], parts[:, 4] * coef[3]
    linear = np.maximum(weights, matmul) + (1 - overlap) * np.minimum(weights, matmul)
    return parts[:, 0] * coef[0] + linear + np.maximum(kv, attention), weights >= matmul, kv >= attention


def _fit(parts: np.ndarray, extra: np.ndarray, seconds: np.ndarray, overlap: float, free: list[int],
         held: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients [latency, 1/e_w, 1/e_kv, 1/e_c] at this overlap, and the relative errors; the first
    assignment of the larger terms comes from coefficients `start` (default: KV and weights larger)."""
    coef = held.copy()
    if start is None:
        w_larger = np.ones(len(seconds), dtype=bool)
        kv_larger = np.ones(len(seconds), dtype=bool)
    else:
        _, w_larger, kv_larger = _predict(parts, start, overlap)
    fixed = [i for i in range(4) if i not in free]
    for _ in range(20):
        design = np.column_stack([
            parts[:, 0],
            parts[:, 1] * np.where(w_larger, 1.0, 1.0 - overlap),
            parts[:, 2] * kv_larger,
            parts[:, 3] * np.where(w_larger, 1.0 - overlap, 1.0) + parts[:, 4] * ~kv_larger,
        ])
        if free:
            rest = seconds - extra - design[:, fixed] @ held[fixed]
            coef[free] = nonnegative_least_squares(design[:, free] / seconds[:, None], rest / seconds)
        _, w_now, kv_now = _predict(parts, coef, overlap)
        if np.array_equal(w_now, w_larger) and np.array_equal(kv_now, kv_larger):
            break
        w_larger, kv_larger = w_now, kv_now
    pred, _, _ = _predict(parts, coef, overlap)
    return coef, np.abs(pred + extra - seconds) / seconds


def calibrate(shape: ModelShape, hardware: HardwareSpec, precision: Precision, tokens, kv, seconds,
              tp: int = 1, hold: dict[str, float] | None = None) -> Calibration:
    """Best-fitting constants (module docstring). `hold`: names in PARAMS or `overlap` -> fixed value."""
    tokens, kv, seconds = (np.asarray(a, dtype=np.float64) for a in (tokens, kv, seconds))
    if len(seconds) < 3 or np.any(seconds <= 0):
        raise SpecscopeError("calibration needs at least 3 step times, all positive")
    hold = dict(hold or {})
    unknown = set(hold) - set(PARAMS) - {"overlap"}
    if unknown:
        raise SpecscopeError(f"cannot hold {', '.join(sorted(unknown))}; hold any of {', '.join(PARAMS)}, overlap")
    parts, extra = _columns(shape, hardware, precision, tokens, kv, tp)
    held = np.zeros(4)
    free = []
    for i, name in enumerate(PARAMS):
        if name in hold:
            held[i] = hold[name] if i == 0 else 1.0 / hold[name]
        else:
            free.append(i)
    overlaps = [float(hold["overlap"])] if "overlap" in hold else [float(o) for o in OVERLAPS]
    results = {}
    additive, _ = _fit(parts, extra, seconds, 0.0, free, held)  # overlap 0 is linear: its fit seeds the others
    for overlap in overlaps:
        coef, rel = _fit(parts, extra, seconds, overlap, free, held, start=additive)
        results[overlap] = (float(np.mean(rel)), coef, rel)
    best = min(results, key=lambda o: (results[o][0], o))
    error, coef, rel = results[best]
    inverse = coef[1:]
    if np.any(inverse <= 0):
        zero = [PARAMS[i + 1] for i in range(3) if inverse[i] <= 0]
        raise SpecscopeError(f"calibration cannot pin {', '.join(zero)}: the step times do not depend on it at these "
                             "points; hold it (e.g. at the GPU value) or profile wider shapes")
    return Calibration(
        weight_bandwidth=float(1 / inverse[0]), kv_bandwidth=float(1 / inverse[1]), compute=float(1 / inverse[2]),
        overlap=best, layer_latency_s=float(coef[0]), points=len(seconds), mean_relative_error=error,
        max_relative_error=float(np.max(rel)), by_overlap={o: r[0] for o, r in results.items()},
    )


@dataclass(frozen=True)
class CalibrationResult:
    calibration: Calibration
    efficiencies: Efficiencies  # the hardware's, with everything this calibration measured replaced


PRESET_TOKENS = np.unique(np.round(np.geomspace(1, 2048, 23)))
PRESET_KV = np.array([0, 1024, 8192, 32768, 65536, 131072, 262144], dtype=np.float64)


def calibrate_against(shape: ModelShape, hardware: HardwareSpec, against: str, tp: int = 1,
                      precision: Precision | str | None = None, hold: dict[str, float] | None = None
                      ) -> CalibrationResult:
    """Calibrate on a profile CSV (its target rows; overhead from its overhead/sample rows, the n-gram
    fraction from its draft:ngram rows) or on a cost model (its target over tokens 1-2048 x KV 0-262,144,
    its overhead and n-gram fraction). Default hold: layer_latency_s = 0 (`DEFAULT_HOLD`)."""
    from specscope.costs.efficiency import efficiencies_for
    from specscope.costs.pricing import default_precision, precision_named

    precision = (default_precision(shape, hardware) if precision is None else
                 precision_named(precision) if isinstance(precision, str) else precision)
    base = efficiencies_for(hardware)
    hold = dict(DEFAULT_HOLD.get(hardware.kind, {})) if hold is None else hold
    if str(against).endswith(".csv"):
        tokens, kv, seconds, overhead, ngram = _profile_points(Path(against))
    else:
        tokens, kv, seconds, overhead, ngram = _model_points(against)
    cal = calibrate(shape, hardware, precision, tokens, kv, seconds, tp=tp, hold=hold)
    provenance = {"source": f"specscope cost-model calibrate: {shape.name} on {hardware.name} against {against}",
                  "points": cal.points, "mean_relative_error": round(cal.mean_relative_error, 6),
                  "held": ", ".join(f"{k}={v:g}" for k, v in hold.items()) or "none"}
    eff = cal.apply(base, provenance)
    eff = replace(eff, step_overhead_s=base.step_overhead_s if overhead is None else overhead,
                  ngram_fraction=base.ngram_fraction if ngram is None else ngram)
    return CalibrationResult(cal, eff)


# With one model the per-layer latency and the weight bandwidth are both constant per step and cannot be told
# apart: hold the latency at 0 so the weight efficiency takes the whole fixed cost (on a GPU, vLLM's CUDA graphs
# make launches nearly free; on a CPU the per-layer host work is real but only another model could separate it).
DEFAULT_HOLD = {"gpu": {"layer_latency_s": 0.0}, "cpu": {"layer_latency_s": 0.0}}


def _profile_points(path: Path):
    from specscope.formats.profile import CONSTANT_KINDS, DRAFT_PREFIX, TARGET_KINDS, read_profile

    prof = read_profile(path)
    kinds = prof["step_kind"]
    target = np.isin(kinds, TARGET_KINDS)
    if target.sum() < 3:
        raise SpecscopeError(f"{path}: fewer than 3 target rows ({', '.join(TARGET_KINDS)}) to calibrate on")
    tokens, kv, seconds = prof["num_batched_tokens"][target], prof["num_kv_tokens"][target], prof["seconds"][target]
    constant = [float(np.mean(prof["seconds"][kinds == k])) for k in CONSTANT_KINDS if np.any(kinds == k)]
    overhead = sum(constant) if constant else None
    ngram = None
    rows = kinds == f"{DRAFT_PREFIX}ngram"
    if rows.any():
        verify = {(n, k): s for n, k, s in zip(tokens, kv, seconds)}
        ratios = [s / verify[(n, k)] for n, k, s in zip(prof["num_draft_tokens"][rows], prof["num_kv_tokens"][rows],
                                                       prof["seconds"][rows]) if (n, k) in verify]
        ngram = float(np.mean(ratios)) if ratios else None
    return tokens, kv, seconds, overhead, ngram


def _model_points(name: str):
    from specscope.costs.presets import load_cost_model

    model = load_cost_model(name)
    n, k = np.meshgrid(PRESET_TOKENS, PRESET_KV)
    n, k = n.ravel(), k.ravel()
    target = np.asarray(model.target(n, k), dtype=np.float64)
    ngram = model.drafts.get("ngram")
    if ngram is None:
        fraction = None
    elif ngram.scales_verify:
        fraction = ngram.fraction
    else:  # a fitted n-gram step: its mean share of the target step over the grid
        fraction = float(np.mean(np.asarray(ngram(n, k)) / target))
    return n, k, target, model.overhead, fraction
