"""Fitting a cost model from a profile: non-negative relative least squares per term, scored on held-out rows.

Two shapes of model, chosen by what the profile records:

- a profile with `batch_size` (the sequences in each timed step, as `specscope profile` writes it)
  gets the measured surface of `specscope/costs/surface.py`: the target as a `SurfaceCost` (piecewise
  linear in tokens through the profiled points, prompts apart, plus per-sequence and attention
  terms), each drafter as a `ChainCost` (one pass per draft depth, and its catch-up per context token
  from the `catch_up:` rows: a drafter's first call for new sequences), and the step phases the engine
  spends around them: sampling grows with the tokens verified and the sequences, overhead with the
  sequences and the proposer that drafted (a feature head's bookkeeping). Those parts are folded in
  where the simulator charges them: per token and per sequence into the target surface, per
  proposer into its chain, the constant into `[overhead] per_step`; an adaptive policy's own time per
  step (the `decision` rows) into `[overhead] decision_per_step` / `decision_per_sequence` /
  `decision_drafting`;
- a profile without it (older files, other tools) gets the linear form, as the presets:
  T = c_fixed + c_tok N + c_kv KV per term, overhead and sample as means.

Every term reports its relative error in sample and on held-out rows (`specscope/costs/fit_surface.py`
`cross_validate`: fit on three quarters of its rows, score the rest, in turn).
"""

from __future__ import annotations

import datetime as _dt
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from specscope.costs.fit_surface import (HeldOut, cross_validate, fit_catch_up, fit_chain, fit_target_surface,
                                         fold_of, relative_fit, within)
from specscope.costs.model import CostModel, DraftCost, LinearCost
from specscope.costs.surface import ChainCost, SurfaceCost
from specscope.errors import SpecscopeError
from specscope.formats.profile import CATCH_UP_PREFIX, CONSTANT_KINDS, DECISION_KIND, DRAFT_PREFIX, TARGET_KINDS


@dataclass(frozen=True)
class FitTerm:
    """One fitted component: its rows, coefficients and relative error |pred - y| / y, in sample and held out."""

    kind: str
    rows: int
    coefficients: dict[str, float]
    mean_relative_error: float
    max_relative_error: float
    held_out: HeldOut | None = None

    @property
    def held_out_error(self) -> float:
        """Mean held-out relative error (NaN when nothing could be scored)."""
        return self.held_out.mean if self.held_out is not None else float("nan")


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


def _relative(pred: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    rel = np.abs(pred - seconds) / seconds
    return float(rel.mean()), float(rel.max())


def _linear_coefficients(tokens, kv, seconds) -> np.ndarray:
    # Relative least squares: minimise sum(((pred - y) / y)^2), so short steps count as much as long ones.
    x = np.column_stack([np.ones_like(seconds), tokens, kv])
    try:
        return nonnegative_least_squares(x / seconds[:, None], np.ones_like(seconds))
    except np.linalg.LinAlgError as err:  # the profile reader bounds every value; this is a last guard
        raise SpecscopeError(f"linear rows cannot be fitted ({err}); check the profile's seconds") from None


def _fit_linear(kind: str, tokens: np.ndarray, kv: np.ndarray, seconds: np.ndarray) -> FitTerm:
    coef = _linear_coefficients(tokens, kv, seconds)
    x = np.column_stack([np.ones_like(seconds), tokens, kv])
    held = cross_validate(lambda train: _linear_coefficients(tokens[train], kv[train], seconds[train]),
                          lambda c, test: x[test] @ c, seconds, fold_of(kv, tokens),
                          lambda train, test: np.ones(len(seconds), dtype=bool))
    return FitTerm(kind, len(seconds), dict(zip(("c_fixed", "c_tok", "c_kv"), map(float, coef))),
                   *_relative(x @ coef, seconds), held)


def _fit_constant(kind: str, seconds: np.ndarray) -> FitTerm:
    value = float(np.mean(seconds))
    held = cross_validate(lambda train: float(np.mean(seconds[train])), lambda v, test: np.full(int(test.sum()), v),
                          seconds, fold_of(seconds), lambda train, test: np.ones(len(seconds), dtype=bool))
    return FitTerm(kind, len(seconds), {"seconds": value}, *_relative(np.full_like(seconds, value), seconds), held)


def fit_cost_model(profile: dict, name: str, source: str = "") -> tuple[CostModel, list[FitTerm]]:
    """Fit target, per-proposer draft and overhead costs from profile columns (see `read_profile`): the measured
    surface where the profile records batch sizes, the linear form otherwise (module docstring)."""
    kinds = profile["step_kind"]
    if not np.isin(kinds, TARGET_KINDS).any():
        raise SpecscopeError(
            f"{source or 'profile'}: no target rows (step_kind one of {', '.join(TARGET_KINDS)}); "
            "the target step time cannot be fitted"
        )
    surface = profile.get("batch_size") is not None
    target, drafts, overhead, terms = (_surface_terms if surface else _linear_terms)(profile)
    decision = (0.0, 0.0, 0.0)
    sel = kinds == DECISION_KIND
    if surface and sel.any():
        decision, term = _decision_term(profile["batch_size"][sel], profile["num_draft_tokens"][sel] > 0,
                                        profile["seconds"][sel])
        terms.append(term)
    identity = profile.get("identity") or {}
    model = CostModel(
        name=name,
        target=target,
        overhead=overhead,
        drafts=drafts,
        decision=decision[0],
        decision_per_sequence=decision[1],
        decision_drafting=decision[2],
        description=(f"fitted by specscope fit-cost from {source}" if source else "fitted by specscope fit-cost")
        + (" (measured surface: specscope/costs/surface.py)" if surface else ""),
        provenance={
            "source": "specscope fit-cost (relative least squares, non-negative coefficients)",
            "profile": source,
            "rows": int(len(kinds)),
            "fitted_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            **{key: identity[key] for key in ("model", "hardware") if identity.get(key)},
            "mean_relative_error": {t.kind: round(t.mean_relative_error, 6) for t in terms},
            "held_out_relative_error": {t.kind: round(t.held_out_error, 6) for t in terms
                                        if np.isfinite(t.held_out_error)},
        },
    )
    model.check_target(f"{source or 'profile'}: the fit")
    return model, terms


def _linear_terms(profile: dict):
    kinds = profile["step_kind"]
    sel = np.isin(kinds, TARGET_KINDS)
    target_term = _fit_linear("target", profile["num_batched_tokens"][sel], profile["num_kv_tokens"][sel],
                              profile["seconds"][sel])
    terms = [target_term]
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
    return LinearCost(**target_term.coefficients), drafts, overhead, terms


# ---------------------------------------------------------------------------------------------
# The measured surface


def _surface_terms(profile: dict):
    kinds, rows = profile["step_kind"], profile["batch_size"]
    tokens, kv, seconds = profile["num_batched_tokens"], profile["num_kv_tokens"], profile["seconds"]
    terms = []
    sel = np.isin(kinds, TARGET_KINDS)
    target, term = _target_term(tokens[sel], kv[sel], rows[sel], seconds[sel], kinds[sel] == "prefill")
    terms.append(term)
    chains: dict[str, ChainCost] = {}
    for kind in sorted({k for k in kinds if k.startswith(DRAFT_PREFIX)}):
        sel = kinds == kind
        chains[kind[len(DRAFT_PREFIX):]], term = _chain_term(kind, profile["num_draft_tokens"][sel], kv[sel],
                                                             rows[sel], seconds[sel])
        terms.append(term)
    for name, chain in list(chains.items()):
        sel = kinds == f"{CATCH_UP_PREFIX}{name}"
        if sel.any():
            chains[name], term = _catch_up_term(name, chain, tokens[sel], profile["num_draft_tokens"][sel], kv[sel],
                                                rows[sel], seconds[sel])
            terms.append(term)
    per_step, per_token, per_row, per_proposer = 0.0, 0.0, 0.0, {}
    sel = kinds == "sample"
    if sel.any():
        t, r, p, s = _step_medians(tokens[sel], rows[sel], profile["proposer"][sel], seconds[sel])
        coef, term = _sample_term(t, r, s)
        terms.append(term)
        per_step, per_token, per_row = coef
    sel = kinds == "overhead"
    if sel.any():
        t, r, p, s = _step_medians(tokens[sel], rows[sel], profile["proposer"][sel], seconds[sel])
        (constant, rows_coef, per_proposer), term = _overhead_term(r, p, s)
        terms.append(term)
        per_step, per_row = per_step + constant, per_row + rows_coef
    target = replace(target, seconds=tuple(s + per_token * n for s, n in zip(target.seconds, target.knots)),
                     c_row=target.c_row + per_row)
    drafts: dict[str, DraftCost] = {}
    for name, chain in chains.items():
        step_extra, row_extra = per_proposer.get(name, (0.0, 0.0))
        drafts[name] = replace(chain, c_step=chain.c_step + step_extra, c_row=chain.c_row + row_extra)
    return target, drafts, per_step, terms


def _target_term(tokens, kv, rows, seconds, prefill) -> tuple[SurfaceCost, FitTerm]:
    model = fit_target_surface(tokens, kv, rows, seconds, prefill)
    held = cross_validate(
        lambda train: fit_target_surface(tokens[train], kv[train], rows[train], seconds[train], prefill[train]),
        lambda m, test: m(tokens[test], kv[test], rows[test]), seconds, fold_of(kv, tokens, rows, prefill),
        lambda train, test: within(tokens, train, prefill.astype(np.int64)) & within(rows, train))
    coefficients = {"c_row": model.c_row, "c_attention": model.c_attention, "knots": len(model.knots),
                    "prefill_knots": len(model.prefill_knots)}
    return model, FitTerm("target", len(seconds), coefficients, *_relative(model(tokens, kv, rows), seconds), held)


def _chain_term(kind, draft_tokens, kv, rows, seconds) -> tuple[ChainCost, FitTerm]:
    depth = draft_tokens / np.maximum(rows, 1.0) - 1.0
    model = fit_chain(depth, kv, rows, seconds)
    held = cross_validate(lambda train: fit_chain(depth[train], kv[train], rows[train], seconds[train]),
                          lambda m, test: m(draft_tokens[test], kv[test], rows[test]), seconds,
                          fold_of(kv, depth, rows), lambda train, test: within(rows, train))
    coefficients = {"c_step": model.c_step, "c_row": model.c_row, "c_kv": model.c_kv, "knots": len(model.knots)}
    return model, FitTerm(kind, len(seconds), coefficients, *_relative(model(draft_tokens, kv, rows), seconds), held)


def _catch_up_term(name: str, chain: ChainCost, taken, draft_tokens, kv, rows, seconds) -> tuple[ChainCost, FitTerm]:
    """The chain with its catch-up per token, from the drafter's first calls (`catch_up:<proposer>` rows)."""
    def predict(c, test):
        return chain(draft_tokens[test], kv[test], rows[test]) + c * taken[test]

    def fit(train):
        return fit_catch_up(chain, taken[train], draft_tokens[train], kv[train], rows[train], seconds[train])

    c = fit(np.ones(len(seconds), dtype=bool))
    held = cross_validate(fit, predict, seconds, fold_of(taken, rows), lambda train, test: within(taken, train))
    every = np.ones(len(seconds), dtype=bool)
    return replace(chain, c_catch_up=c), FitTerm(f"{CATCH_UP_PREFIX}{name}", len(seconds),
                                                 {"c_catch_up": c}, *_relative(predict(c, every), seconds), held)


def _step_medians(tokens, rows, proposer, seconds):
    """Per-step phase timings (one row per engine step: noisy one by one) as the median of each (proposer,
    sequences, tokens) shape: (tokens, rows, proposer, seconds) arrays, one entry per shape."""
    keys = {}
    for i, key in enumerate(zip(proposer, rows, tokens)):
        keys.setdefault(key, []).append(seconds[i])
    shapes = list(keys)
    return (np.array([k[2] for k in shapes], dtype=np.float64), np.array([k[1] for k in shapes], dtype=np.float64),
            np.array([k[0] for k in shapes], dtype=object), np.array([float(np.median(keys[k])) for k in shapes]))


def _sample_term(tokens, rows, seconds) -> tuple[tuple[float, float, float], FitTerm]:
    """Sampling (verification) per step: constant + per token verified + per sequence."""
    design = np.column_stack([np.ones_like(seconds), tokens, rows])
    coef = relative_fit(design, seconds)
    held = cross_validate(lambda train: relative_fit(design[train], seconds[train]), lambda c, test: design[test] @ c,
                          seconds, fold_of(tokens, rows), lambda train, test: np.ones(len(seconds), dtype=bool))
    term = FitTerm("sample", len(seconds), dict(zip(("c_step", "c_tok", "c_row"), map(float, coef))),
                   *_relative(design @ coef, seconds), held)
    return (float(coef[0]), float(coef[1]), float(coef[2])), term


def _decision_term(rows, drafted, seconds) -> tuple[tuple[float, float, float], FitTerm]:
    """An online policy's own time per step: constant + per decoding sequence + once more where some sequence
    drafted (it then plans chains), from the `decision` rows (one per step of its profiled run: num_draft_tokens,
    the step's drafts), folded into per-shape medians first."""
    _, rows, shape, seconds = _step_medians(np.zeros_like(rows), rows, np.asarray(drafted, dtype=object), seconds)
    drafting = shape.astype(np.float64)
    design = np.column_stack([np.ones_like(seconds), rows, drafting])
    coef = relative_fit(design, seconds)
    held = cross_validate(lambda train: relative_fit(design[train], seconds[train]), lambda c, test: design[test] @ c,
                          seconds, fold_of(rows, drafting), lambda train, test: within(rows, train))
    names = ("decision_per_step", "decision_per_sequence", "decision_drafting")
    term = FitTerm(DECISION_KIND, len(seconds), dict(zip(names, map(float, coef))), *_relative(design @ coef, seconds),
                   held)
    return (float(coef[0]), float(coef[1]), float(coef[2])), term


def _overhead_term(rows, proposer, seconds):
    """Host overhead per step: constant + per sequence, plus per proposer that drafted (per step and per sequence)."""
    names = sorted({p for p in proposer if p})
    columns = [np.ones_like(seconds), rows]
    for name in names:
        drafted = (proposer == name).astype(np.float64)
        columns += [drafted, drafted * rows]
    design = np.column_stack(columns)
    coef = relative_fit(design, seconds)
    held = cross_validate(lambda train: relative_fit(design[train], seconds[train]), lambda c, test: design[test] @ c,
                          seconds, fold_of(rows, np.unique(proposer, return_inverse=True)[1]),
                          lambda train, test: np.ones(len(seconds), dtype=bool))
    per_proposer = {name: (float(coef[2 + 2 * i]), float(coef[3 + 2 * i])) for i, name in enumerate(names)}
    coefficients = {"c_step": float(coef[0]), "c_row": float(coef[1]),
                    **{f"{name}_step": v[0] for name, v in per_proposer.items()},
                    **{f"{name}_row": v[1] for name, v in per_proposer.items()}}
    term = FitTerm("overhead", len(seconds), coefficients, *_relative(design @ coef, seconds), held)
    return (float(coef[0]), float(coef[1]), per_proposer), term


def fit_profile_file(profile: Path, output: Path, name: str, fitted_by: str) -> tuple[CostModel, list[FitTerm]]:
    """Fit the profile CSV at `profile` and write the cost model to `output`; `fitted_by` names the command."""
    from specscope.costs.presets import write_cost_model
    from specscope.formats.profile import read_profile

    model, terms = fit_cost_model(read_profile(profile), name, source=str(profile))
    write_cost_model(output, model, header_comment=f"Cost model fitted by `{fitted_by}` from {profile}.\n"
                     "Forms and units: see specscope/costs/model.py and specscope/costs/surface.py (seconds).")
    return model, terms
