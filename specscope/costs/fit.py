"""Fitting a cost model from a profile: non-negative relative least squares per term.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specscope.costs.model import CostModel, DraftCost, LinearCost
from specscope.errors import SpecscopeError
from specscope.formats.profile import CONSTANT_KINDS, DRAFT_PREFIX, TARGET_KINDS

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass


@dataclass(frozen=True)
class FitTerm:
    """One fitted component: its rows, coefficients and relative error |pred - y| / y."""

    kind: str
    rows: int
    coefficients: dict[str, float]
    mean_relative_error: float
    max_relative_error: float


def nonnegative_least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ||x @ c - y|| subject to c >= 0, exactly, for a handful of columns.

    The optimum is the unconstrained least-squares solution on its own support, so trying every
    subset of columns and keeping the best feasible solution finds it (2^columns small solves).
    """
    n_cols = x.shape[1]
    scale = np.linalg.norm(x, axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale
    best, best_err = np.zeros(n_cols), float(np.sum(y**2))
    for size in range(1, n_cols + 1):
        for subset in itertools.combinations(range(n_cols), size):
            cols = list(subset)
            coef, *_ = np.linalg.lstsq(xs[:, cols], y, rcond=None)
            if np.any(coef < 0):
                continue
            err = float(np.sum((xs[:, cols] @ coef - y) ** 2))
            if err < best_err:
                best = np.zeros(n_cols)
                best[cols] = coef
                best_err = err
    return best / scale


def _fit_linear(kind: str, tokens: np.ndarray, kv: np.ndarray, seconds: np.ndarray) -> FitTerm:
    # Relative least squares: minimise sum(((pred - y) / y)^2), so short steps count as much as long ones.
    x = np.column_stack([np.ones_like(seconds), tokens, kv])
    try:
        coef = nonnegative_least_squares(x / seconds[:, None], np.ones_like(seconds))
    except np.linalg.LinAlgError as err:  # the profile reader bounds every value; this is a last guard
        raise SpecscopeError(f"the {kind} rows cannot be fitted ({err}); check the profile's seconds") from None
    rel = np.abs(x @ coef - seconds) / seconds
    return FitTerm(kind, len(seconds), dict(zip(("c_fixed", "c_tok", "c_kv"), map(float, coef))),
                   float(rel.mean()), float(rel.max()))


def _fit_constant(kind: str, seconds: np.ndarray) -> FitTerm:
    value = float(np.mean(seconds))
    rel = np.abs(value - seconds) / seconds
    return FitTerm(kind, len(seconds), {"seconds": value}, float(rel.mean()), float(rel.max()))


def fit_cost_model(profile: dict[str, np.ndarray], name: str, source: str = "") -> tuple[CostModel, list[FitTerm]]:
    """Fit target, per-proposer draft and overhead costs from profile columns (see `read_profile`)."""
    kinds = profile["step_kind"]
    terms: list[FitTerm] = []
    target_rows = np.isin(kinds, TARGET_KINDS)
    if not target_rows.any():
        raise SpecscopeError(
            f"{source or 'profile'}: no target rows (step_kind one of {', '.join(TARGET_KINDS)}); "
            "the target step time cannot be fitted"
        )
    sel = target_rows
    target_term = _fit_linear("target", profile["num_batched_tokens"][sel], profile["num_kv_tokens"][sel],
                              profile["seconds"][sel])
    terms.append(target_term)
    drafts: dict[str, DraftCost] = {}
    for kind in sorted({k for k in kinds if k.startswith(DRAFT_PREFIX)}):
        sel = kinds == kind
        term = _fit_linear(kind, profile["num_draft_tokens"][sel], profile["num_kv_tokens"][sel],
                           profile["seconds"][sel])
        terms.append(term)
        drafts[kind[len(DRAFT_PREFIX):]] = LinearCost(**term.coefficients)
    overhead = 0.0
    for kind in CONSTANT_KINDS:
        sel = kinds == kind
        if sel.any():
            term = _fit_constant(kind, profile["seconds"][sel])
            terms.append(term)
            overhead += term.coefficients["seconds"]
    model = CostModel(
        name=name,
        target=LinearCost(**target_term.coefficients),
        overhead=overhead,
        drafts=drafts,
        description=f"fitted by specscope fit-cost from {source}" if source else "fitted by specscope fit-cost",
        provenance={
            "source": "specscope fit-cost (relative least squares, non-negative coefficients)",
            "profile": source,
            "rows": int(len(kinds)),
            "fitted_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "mean_relative_error": {t.kind: round(t.mean_relative_error, 6) for t in terms},
        },
    )
    model.check_target(f"{source or 'profile'}: the fit")
    return model, terms


def fit_profile_file(profile: Path, output: Path, name: str, fitted_by: str) -> tuple[CostModel, list[FitTerm]]:
    """Fit the profile CSV at `profile` and write the cost model to `output`; `fitted_by` names the command."""
    from specscope.costs.presets import write_cost_model
    from specscope.formats.profile import read_profile

    model, terms = fit_cost_model(read_profile(profile), name, source=str(profile))
    write_cost_model(output, model, header_comment=f"Cost model fitted by `{fitted_by}` from {profile}.\n"
                     "Forms and units: see specscope/costs/model.py (seconds).")
    return model, terms
