"""Fitting the measured surfaces (`specscope/costs/surface.py`) from a profile, and scoring them on held-out rows.

    surface = fit_target_surface(tokens, kv, rows, seconds, prefill)   # SurfaceCost
    chain = fit_chain(depth, kv, rows, seconds)                        # ChainCost
    c_catch_up = fit_catch_up(chain, taken, draft_tokens, kv, rows, seconds)  # its catch-up per token
    held_out = cross_validate(fit, predict, columns, seconds, inside)  # HeldOut

Every fit is relative least squares with non-negative coefficients (seconds and per-unit seconds are
never negative): minimise sum(((prediction - y) / y)^2), so a 1 ms step counts as much as a 1 s one.
The knots of a piecewise-linear part are the distinct values the profile measured (tokens for the
target, rows for a chain), so the breakpoints are where the engine was timed and nothing is assumed
about where its kernels change.

Held-out error: the rows are dealt into `FOLDS` folds (sorted by shape, dealt in turn, so every fold
spans the profile); each fold is predicted by a fit on the others. Only rows inside the range the
other folds measured are scored (`inside`): a piecewise-linear fit extrapolates past its last knot
along a line, which is what it does for the simulator too, but a held-out score should not depend on
which fold happened to hold the largest batch. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from specscope.costs.surface import ChainCost, SurfaceCost, hat_basis

FOLDS = 4
PREFILL_MARGIN = 1.0  # a step with more tokens per sequence than the largest profiled verify step + this is a prompt


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """argmin ||a x - b|| subject to x >= 0 (Lawson and Hanson's active-set method)."""
    m, n = a.shape
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a = a / scale
    x, passive = np.zeros(n), np.zeros(n, dtype=bool)
    for _ in range(max_iter or 3 * n + 10):
        w = a.T @ (b - a @ x)
        if passive.all() or np.max(np.where(passive, -np.inf, w)) <= 1e-12:
            break
        passive[int(np.argmax(np.where(passive, -np.inf, w)))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if np.all(z[passive] > 0):
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / np.maximum(x[bad] - z[bad], 1e-300))
            x = x + alpha * (z - x)
            passive &= x > 1e-15
            x[~passive] = 0.0
    return x / scale


def relative_fit(design: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the squared relative error of design @ c against seconds."""
    return nnls(design / seconds[:, None], np.ones_like(seconds))


def attention_pairs(tokens, kv, rows) -> np.ndarray:
    """(N / R) * (KV + N / 2): query-key pairs of a step of R sequences alike (`SurfaceCost`)."""
    tokens, rows = np.asarray(tokens, dtype=np.float64), np.maximum(np.asarray(rows, dtype=np.float64), 1.0)
    return tokens / rows * (np.asarray(kv, dtype=np.float64) + tokens / 2.0)


def prefill_threshold(tokens: np.ndarray, rows: np.ndarray, prefill: np.ndarray) -> float:
    """Tokens per sequence from which a step is priced as a prompt: past the largest profiled verify step."""
    if not prefill.any():
        return 0.0
    per_row = tokens / np.maximum(rows, 1.0)
    verify = per_row[~prefill]
    low = float(verify.max()) + PREFILL_MARGIN if verify.size else 1.0
    return max(low, min(float(per_row[prefill].min()), 2 * low))


def fit_target_surface(tokens, kv, rows, seconds, prefill) -> SurfaceCost:
    """The target step's `SurfaceCost` from profiled forwards; `prefill` [n] bool marks prompt forwards (one logit
    row per sequence) among the decode / verify ones (every token gets logits)."""
    tokens, kv, rows, seconds = (np.asarray(v, dtype=np.float64) for v in (tokens, kv, rows, seconds))
    prefill = np.asarray(prefill, dtype=bool)
    threshold = prefill_threshold(tokens, rows, prefill)
    is_prefill = prefill & (threshold > 0)
    knots = tuple(np.unique(tokens[~is_prefill])) if (~is_prefill).any() else tuple(np.unique(tokens))
    pknots = tuple(np.unique(tokens[is_prefill]))
    columns = [np.where(~is_prefill[:, None], hat_basis(tokens, knots), 0.0)]
    if pknots:
        columns.append(np.where(is_prefill[:, None], hat_basis(tokens, pknots), 0.0))
    design = np.column_stack(columns + [rows, attention_pairs(tokens, kv, rows)])
    coef = relative_fit(design, seconds)
    f, coef = coef[: len(knots)], coef[len(knots):]
    pf, coef = coef[: len(pknots)], coef[len(pknots):]
    return SurfaceCost(knots=knots, seconds=tuple(map(float, f)), prefill_knots=pknots,
                       prefill_seconds=tuple(map(float, pf)), prefill_from=threshold if pknots else 0.0,
                       c_row=float(coef[0]), c_attention=float(coef[1]))


def fit_chain(depth, kv, rows, seconds) -> ChainCost:
    """A drafter's `ChainCost` from profiled steps of `depth` draft passes over `rows` sequences."""
    depth, kv, rows, seconds = (np.asarray(v, dtype=np.float64) for v in (depth, kv, rows, seconds))
    knots = tuple(np.unique(rows))
    design = np.column_stack([hat_basis(rows, knots) * depth[:, None], depth * kv, np.ones_like(depth), rows])
    coef = relative_fit(design, seconds)
    return ChainCost(knots=knots, seconds=tuple(map(float, coef[: len(knots)])), c_kv=float(coef[-3]),
                     c_step=float(coef[-2]), c_row=float(coef[-1]))


def fit_catch_up(chain: ChainCost, taken, draft_tokens, kv, rows, seconds) -> float:
    """Seconds per context token a drafter takes in before its first drafts (`ChainCost.c_catch_up`), from its
    first calls for new sequences (`taken` tokens each call, `seconds` in all): what they cost beyond the chain's
    own drafting at the same shape, relative least squares, >= 0."""
    taken, seconds = np.asarray(taken, dtype=np.float64), np.asarray(seconds, dtype=np.float64)
    steady = np.asarray(chain(draft_tokens, kv, rows), dtype=np.float64)
    return float(nnls((taken / seconds)[:, None], (seconds - steady) / seconds)[0])


@dataclass(frozen=True)
class HeldOut:
    """Relative error |prediction - y| / y of rows predicted by fits that did not see them."""

    mean: float  # NaN when no row could be scored
    max: float
    scored: int  # rows scored (inside the range the other folds measured)
    rows: int


def fold_of(*keys: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """[n] the fold of each row: rows sorted by the keys (last key first, as np.lexsort) and dealt in turn."""
    order = np.lexsort(keys)
    fold = np.empty(len(order), dtype=np.int64)
    fold[order] = np.arange(len(order)) % folds
    return fold


def cross_validate(fit: Callable[[np.ndarray], object], predict: Callable[[object, np.ndarray], np.ndarray],
                   seconds: np.ndarray, fold: np.ndarray,
                   inside: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> HeldOut:
    """Held-out relative error: for each fold, `fit(train mask)` and `predict(model, test mask)`; `inside(train,
    test)` says which test rows lie within what the training rows measured (only those are scored)."""
    errors = []
    for f in np.unique(fold):
        test, train = fold == f, fold != f
        if train.sum() < 2:
            continue
        model = fit(train)
        scored = test & inside(train, test)
        if scored.any():
            errors.append(np.abs(predict(model, scored) - seconds[scored]) / seconds[scored])
    if not errors:
        return HeldOut(float("nan"), float("nan"), 0, len(seconds))
    err = np.concatenate(errors)
    return HeldOut(float(err.mean()), float(err.max()), len(err), len(seconds))


def within(values: np.ndarray, train: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """[n] whether each row's value lies inside [min, max] of the training rows' values (of its own group)."""
    groups = np.zeros(len(values), dtype=np.int64) if groups is None else groups
    out = np.zeros(len(values), dtype=bool)
    for g in np.unique(groups):
        mine, seen = groups == g, (groups == g) & train
        if seen.any():
            out[mine] = (values[mine] >= values[seen].min()) & (values[mine] <= values[seen].max())
    return out
