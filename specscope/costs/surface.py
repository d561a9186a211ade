"""Measured step-time surfaces: cost forms that follow the engine's profile where a line cannot.

A CPU engine's target step is not linear in its tokens: one token runs a matrix-vector kernel, 2-4
tokens a small-batch kernel that reads each weight block once for all of them, 5 and more a tiled
GEMM; a prompt (prefill) computes logits for one row per sequence instead of every token; and each
sequence in the step adds attention over its own KV plus some host work. A self-draft of L layers
spends k sequential draft passes per step, each over one token per drafting sequence. Two forms
model that (TOML tables with these fields; fitted by `specscope/costs/fit_surface.py`):

`SurfaceCost` (form "surface"), the target step:

    T(N, KV, R) = f(N) + c_row * R + c_attention * (N / R) * (KV + N / 2)

- f: piecewise-linear in N through (`knots`, `seconds`) for decode and verify steps (every token
  gets logits); for steps of at least `prefill_from` tokens per sequence (prompts) through
  (`prefill_knots`, `prefill_seconds`); beyond the last knot (or before the first) the nearest
  segment's line continues, never below 0;
- c_row: seconds per sequence in the step (its share of bookkeeping and attention set-up);
- c_attention: seconds per (query token, key) pair: each of a sequence's q = N / R tokens attends
  to its KV / R cached tokens plus, on average, half of its own chunk.

`ChainCost` (form "chain"), a drafter that runs one pass per draft depth:

    D(tokens, KV, R) = c_step + c_row * R + depth * (p(R) + c_kv * KV),   depth = tokens / R - 1

- tokens = k + 1 per drafting sequence (the convention of every draft form), so depth is the k of
  each sequence when they draft alike (with unequal k it is their mean: a chain runs max k passes,
  the deeper ones over fewer rows);
- p: one pass over R rows (one token each), piecewise-linear through (`knots`, `seconds`);
- c_kv: seconds per pass per KV token; c_step: once per step, c_row: once per drafting sequence (the
  drafter's host work, its catch-up of the step's bonus token);
- c_catch_up: seconds per context token the drafter has not seen, taken in before its first drafts of a
  sequence (`catch_up`): a draft model runs its layers over the whole prompt then, which at a batch of
  long prompts costs more than the drafting of the rest of the run (16 layers over 8 code-edit prompts
  of 1,627 tokens in all: 1.6 s). The simulator charges it at each sequence's first drafting step.

`rows` None is one sequence. Both are numpy-vectorised in every argument. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from specscope.costs.model import StepCost


@lru_cache(maxsize=256)
def _curve(knots: tuple[float, ...], values: tuple[float, ...]):
    """(xs, ys arrays, first and last segment: (x0, y0, dy, dx)) of a curve, once per curve: the adaptive decision
    prices a few steps every engine step, and rebuilding these arrays was most of its time."""
    xs, ys = np.asarray(knots, dtype=np.float64), np.asarray(values, dtype=np.float64)
    return xs, ys, (xs[0], ys[0], ys[1] - ys[0], xs[1] - xs[0]), (xs[-1], ys[-1], ys[-1] - ys[-2], xs[-1] - xs[-2])


def piecewise_linear(x, knots: tuple[float, ...], values: tuple[float, ...]):
    """Linear interpolation through (knots, values), continued past either end along the end segment, >= 0;
    one knot: that value everywhere."""
    x = np.asarray(x, dtype=np.float64)
    if len(knots) == 1:
        return np.full_like(x, values[0]) if x.ndim else float(values[0])
    xs, ys, (x0, y0, dy0, dx0), (x1, y1, dy1, dx1) = _curve(tuple(knots), tuple(values))
    if not x.ndim:  # one point (the decision's usual call): no arrays to build
        v = float(x)
        out = y0 + (v - x0) * dy0 / dx0 if v < x0 else y1 + (v - x1) * dy1 / dx1 if v > x1 else np.interp(v, xs, ys)
        return float(max(out, 0.0))
    out = np.interp(x, xs, ys)
    low, high = x < x0, x > x1
    if low.any():
        out = np.where(low, y0 + (x - x0) * dy0 / dx0, out)
    if high.any():
        out = np.where(high, y1 + (x - x1) * dy1 / dx1, out)
    return np.maximum(out, 0.0)


def hat_basis(x: np.ndarray, knots: tuple[float, ...]) -> np.ndarray:
    """[len(x), len(knots)] weights w with piecewise_linear(x, knots, v) = w @ v (before the >= 0 clip): the
    fitting's design matrix for the values at the knots."""
    x = np.asarray(x, dtype=np.float64)
    basis = np.zeros((len(x), len(knots)))
    if len(knots) == 1:
        basis[:, 0] = 1.0
        return basis
    for j in range(len(knots)):
        e = np.zeros(len(knots))
        e[j] = 1.0
        xs = np.asarray(knots, dtype=np.float64)
        inside = np.interp(x, xs, e)
        low = e[0] + (x - xs[0]) * (e[1] - e[0]) / (xs[1] - xs[0])
        high = e[-1] + (x - xs[-1]) * (e[-1] - e[-2]) / (xs[-1] - xs[-2])
        basis[:, j] = np.where(x < xs[0], low, np.where(x > xs[-1], high, inside))
    return basis


def _check_curve(knots, values, name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    knots, values = tuple(float(v) for v in knots), tuple(float(v) for v in values)
    if len(knots) != len(values):
        raise ValueError(f"{name}: {len(knots)} knots but {len(values)} values")
    if any(b <= a for a, b in zip(knots, knots[1:])):
        raise ValueError(f"{name}: knots must increase strictly, got {list(knots)}")
    return knots, values


def _rows(rows):
    return 1.0 if rows is None else np.maximum(np.asarray(rows, dtype=np.float64), 1.0)


@dataclass(frozen=True)
class SurfaceCost(StepCost):
    """The target step as the engine's profile measured it (module docstring)."""

    form: ClassVar[str] = "surface"

    knots: tuple  # tokens in a decode / verify step
    seconds: tuple  # f at those knots
    c_row: float
    c_attention: float
    prefill_knots: tuple = ()  # tokens in a prompt step (empty: priced like the others)
    prefill_seconds: tuple = ()
    prefill_from: float = 0.0  # tokens per sequence from which a step is a prompt step (0: never)

    def __post_init__(self):
        if not self.knots:
            raise ValueError("knots is empty; a surface needs at least one measured point")
        knots, seconds = _check_curve(self.knots, self.seconds, "knots/seconds")
        pknots, pseconds = _check_curve(self.prefill_knots, self.prefill_seconds, "prefill_knots/prefill_seconds")
        for name, value in (("knots", knots), ("seconds", seconds), ("prefill_knots", pknots),
                            ("prefill_seconds", pseconds)):
            object.__setattr__(self, name, value)

    def __call__(self, tokens, kv, rows=None):
        n, kv, r = np.asarray(tokens, dtype=np.float64), np.asarray(kv, dtype=np.float64), _rows(rows)
        per_row = n / r
        core = piecewise_linear(n, self.knots, self.seconds)
        if self.prefill_knots and self.prefill_from > 0:
            core = np.where(per_row >= self.prefill_from, piecewise_linear(n, self.prefill_knots, self.prefill_seconds),
                            core)
        out = core + self.c_row * r + self.c_attention * per_row * (kv + n / 2.0)
        return out if np.ndim(out) else float(out)

    def as_dict(self) -> dict[str, Any]:
        prefill = ({"prefill_knots": list(self.prefill_knots), "prefill_seconds": list(self.prefill_seconds),
                    "prefill_from": self.prefill_from} if self.prefill_knots else {})  # a file's lists are non-empty
        return {"knots": list(self.knots), "seconds": list(self.seconds), **prefill, "c_row": self.c_row,
                "c_attention": self.c_attention}


@dataclass(frozen=True)
class ChainCost(StepCost):
    """A drafter's step as a chain of passes, one per draft depth (module docstring)."""

    form: ClassVar[str] = "chain"

    knots: tuple  # rows in a pass
    seconds: tuple  # one pass at those rows, KV 0
    c_kv: float  # per pass and KV token
    c_step: float  # once per step
    c_row: float  # once per drafting sequence
    c_catch_up: float = 0.0  # per context token taken in before a sequence's first drafts

    def __post_init__(self):
        if not self.knots:
            raise ValueError("knots is empty; a chain needs at least one measured pass")
        knots, seconds = _check_curve(self.knots, self.seconds, "knots/seconds")
        object.__setattr__(self, "knots", knots)
        object.__setattr__(self, "seconds", seconds)

    def depth(self, tokens, rows=None):
        """Draft passes of a step: tokens / rows - 1 (tokens = k + 1 per drafting sequence), >= 0."""
        return np.maximum(np.asarray(tokens, dtype=np.float64) / _rows(rows) - 1.0, 0.0)

    def pass_seconds(self, kv, rows=None):
        """Seconds of one draft pass over `rows` sequences holding `kv` KV tokens."""
        return piecewise_linear(_rows(rows), self.knots, self.seconds) + self.c_kv * np.asarray(kv, dtype=np.float64)

    def __call__(self, tokens, kv, rows=None):
        out = self.c_step + self.c_row * _rows(rows) + self.depth(tokens, rows) * self.pass_seconds(kv, rows)
        return out if np.ndim(out) else float(out)

    def marginal(self, tokens, kv, extra, rows=None):
        return np.asarray(extra, dtype=np.float64) * self.slope(tokens, kv, rows)

    def slope(self, tokens, kv, rows=None):
        """One more draft token of one of the `rows` sequences: its share of a pass."""
        out = self.pass_seconds(kv, rows) / _rows(rows)
        return out if np.ndim(out) else float(out)

    @property
    def catches_up(self) -> bool:
        return self.c_catch_up > 0

    def catch_up(self, tokens):
        return self.c_catch_up * np.asarray(tokens, dtype=np.float64)

    def fixed(self, kv, rows=None) -> float:
        """Once per step that drafts, whatever its rows (`c_step`; each row adds `per_sequence` and its passes)."""
        return self.c_step

    def per_sequence(self, kv, rows=None) -> float:
        return self.c_row

    def as_dict(self) -> dict[str, Any]:
        return {"knots": list(self.knots), "seconds": list(self.seconds), "c_kv": self.c_kv, "c_step": self.c_step,
                "c_row": self.c_row, "c_catch_up": self.c_catch_up}

