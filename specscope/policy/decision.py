"""Decision. Step time under the cost model (`specscope/costs/model.py`, serve pricing) for a batch of n
decoding sequences with choices (p_i, k_i):

    T = c_fixed + c_tok * sum(k_i + 1) + c_kv * KV + overhead
        + for every proposer that runs: linear  d_fixed + d_tok * sum_{i: p_i = p, k_i > 0}(k_i + 1) + d_kv * KV
                                        fraction f * T_target

and the expected tokens are sum E_i(p_i, k_i). `choose_batch` maximises sum E / T, the batch's
expected committed tokens per second: for each set of proposers allowed to run, Dinkelbach's
iteration (rate lambda; each sequence maximises E_i - lambda * its marginal time; repeat) finds the
exact optimum of that ratio, and the best set wins. k = 0 (no speculation) is chosen whenever drafts
cost more time than they are expected to save — e.g. a large, compute-bound batch.
`choose_replicated` is the same objective for paper mode, where each row stands for B identical
copies forming their own batch. Proposer switching costs are not modelled (0 in the presets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specscope.costs.model import CostModel
from specscope.policy.acceptance import Outlook, plan_scores


@dataclass(frozen=True)
class _DraftTerms:
    """A proposer's draft cost split into what the decision needs."""

    fixed: float  # once per step when it runs (linear: d_fixed + d_kv * KV; fraction: f * base target)
    per_draft: float  # per draft token (linear: d_tok; fraction: f * c_tok)
    per_sequence: float  # once per drafting sequence (linear: d_tok for its last committed token)


def _draft_terms(costs: CostModel, proposers, n: int, kv: float, base_target: float) -> list[_DraftTerms]:
    out, slope = [], costs.target.slope(n, kv, n)
    for name in proposers:
        form = costs.draft(name)
        if form.scales_verify:
            out.append(_DraftTerms(form(base_target), form(slope), 0.0))
        else:
            out.append(_DraftTerms(form.fixed(kv, n), form.slope(n, kv, n), form.per_sequence(kv, n)))
    return out


def _serve_prices(costs: CostModel, proposers, n: int, kv: float, width: int,
                  target_marginal: np.ndarray | None = None) -> tuple[float, list[_DraftTerms], np.ndarray]:
    """Serve pricing of a batch of n decoding sequences: (base seconds, draft terms, marginal [P, K + 1])."""
    tgt, ks = costs.target, np.arange(width)
    base_target = tgt(n, kv, n)
    terms = _draft_terms(costs, proposers, n, kv, base_target)
    verify = (tgt.marginal(n, kv, ks, n) if target_marginal is None
              else np.asarray(target_marginal, dtype=np.float64)[:width])
    per_draft = np.array([t.per_draft for t in terms])[:, None]
    per_sequence = np.array([t.per_sequence for t in terms])[:, None]
    marg = verify[None, :] + per_draft * ks[None, :] + per_sequence
    marg[:, 0] = 0.0  # no drafts: nothing added
    return base_target + costs.overhead, terms, marg


def _rows(x) -> np.ndarray:
    """x as a 2-D array ([n] -> [1, n]; np.atleast_2d costs more on the decision's small arrays)."""
    x = np.asarray(x)
    return x if x.ndim >= 2 else x.reshape(1, -1)


def batch_seconds(costs: CostModel, proposers, kv: float, k: np.ndarray, p: np.ndarray,
                  target_marginal: np.ndarray | None = None) -> np.ndarray:
    """[E, n] serve-priced step seconds of E alternative choices (k, p) [E, n] for one batch (as `choose_batch`),
    shared out per sequence: the step's base equally, each sequence's own marginal seconds, and a proposer's
    fixed cost among the sequences it drafts for. Each row sums to the step's seconds under that choice."""
    return StepPrices(costs, tuple(proposers), kv, 1, False, target_marginal).choices(k, p)


def _replicated_steps(costs: CostModel, proposers, kv, copies: int, n: int, width: int) -> np.ndarray:
    """[n, P, K + 1] paper-mode seconds of a step of each row's `copies` copies (a batch of their own, KV kv [n])
    drafting k = 0 .. K tokens with each proposer: T(copies * (k + 1), KV) + draft (k > 0) + overhead."""
    kv = np.broadcast_to(np.asarray(kv, dtype=np.float64), (n,))[:, None]
    ks = np.arange(width, dtype=np.float64)
    tokens = copies * (ks + 1)[None, :]  # [1, K + 1]
    target = costs.target(tokens, kv, copies)  # [n, K + 1]
    step = np.empty((n, len(proposers), width))
    for q, name in enumerate(proposers):
        form = costs.draft(name)
        draft = form(target) if form.scales_verify else form(tokens, kv, copies)
        step[:, q, :] = target + np.where(ks > 0, draft, 0.0) + costs.overhead
    return step


def replicated_seconds(costs: CostModel, proposers, kv: np.ndarray, copies: int, k: np.ndarray,
                       p: np.ndarray) -> np.ndarray:
    """[E, n] paper-mode step seconds of choices (k, p) [E, n], each row `copies` copies in a batch of their own
    (as `choose_replicated` prices one row)."""
    k, p = _rows(k), _rows(p)
    n = k.shape[1]
    step = _replicated_steps(costs, proposers, kv, copies, n, int(k.max(initial=0)) + 1)
    return step[np.arange(n)[None, :], p, k]


@dataclass(frozen=True)
class StepPrices:
    """One step's seconds under the cost model, priced as the decision prices it: serve (a batch of n
    sequences, KV `kv`: float) or paper mode (`replicated`: each row `copies` copies, KV `kv` [n])."""

    costs: CostModel
    proposers: tuple[str, ...]
    kv: float | np.ndarray
    copies: int
    replicated: bool
    target_marginal: np.ndarray | None = None  # serve: measured target seconds of k drafts (as `choose_batch`)
    _serve: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # n -> `_serve_prices`

    def _serve_table(self, n: int, width: int) -> tuple[float, list[_DraftTerms], np.ndarray]:
        """Serve pricing of n sequences, (base, draft terms, marginal [P, >= width]); each column depends on its
        k only, so one table serves every narrower request of the step. Past the measured target marginal: the
        cost model's slope."""
        known = self._serve.get(n)
        if known is None or known[2].shape[1] < width:
            marginal = self.target_marginal
            if marginal is not None and len(marginal) < width:
                slope = self.costs.target.slope(n, float(self.kv), n)
                extra = marginal[-1] + slope * np.arange(1, width + 1 - len(marginal))
                marginal = np.concatenate([marginal, extra])
            full = width if marginal is None else len(marginal)
            known = self._serve[n] = _serve_prices(self.costs, self.proposers, n, float(self.kv), full, marginal)
        return known

    def choices(self, k: np.ndarray, p: np.ndarray) -> np.ndarray:
        """[E, n] each row's seconds under E alternative choices (k, p) [E, n] (serve: as `batch_seconds`; paper
        mode: as `replicated_seconds`)."""
        if self.replicated:
            return replicated_seconds(self.costs, self.proposers, self.kv, self.copies, k, p)
        k, p = _rows(k), _rows(p)
        n = k.shape[1]
        base, terms, marg = self._serve_table(n, int(k.max(initial=0)) + 1)
        seconds = base / n + marg[p, k]
        for q, t in enumerate(terms):
            drafting = (p == q) & (k > 0)
            seconds = seconds + t.fixed * drafting / np.maximum(drafting.sum(axis=1, keepdims=True), 1)
        return seconds

    def seconds(self, k: np.ndarray, p: np.ndarray) -> np.ndarray:
        """[n] each row's seconds (serve: its share of the step) if the rows draft k [n] with proposers p [n]."""
        return self.choices(k, p)[0]

    def per_draft(self, p: np.ndarray, width: int) -> np.ndarray:
        """[n, width] column j - 1: the seconds draft j adds to its row's step (verify + draft), drafts j = 1..width."""
        n = len(p)
        if self.replicated:
            step = _replicated_steps(self.costs, self.proposers, self.kv, self.copies, n, width + 1)
            return np.diff(step, axis=2)[np.arange(n), p]
        _, _, marg = self._serve_table(n, width + 1)
        return np.diff(marg[:, : width + 1], axis=1)[p]


def choose_batch(outlook: Outlook, costs: CostModel, proposers, kv: float, caps: np.ndarray | None = None,
                 target_marginal: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(k [n], proposer [n]) maximising the batch's long-run expected committed tokens per second.

    Serve pricing (module docstring). Per sequence and proposer, every two-state plan (k_cold, k_hot)
    is scored by its long-run tokens and marginal seconds per step; Dinkelbach's iteration over the
    batch ratio sum(tokens) / (base + sum(marginal)) picks one plan per sequence, for each set of
    proposers allowed to run; each sequence then proposes its plan's k for the state it is in.
    caps: [n, P] the most drafts each proposer can offer each sequence now, when known before deciding
    (an n-gram's match, drafted first: `specscope/engine/drafting.py`); None: any k up to the outlook's cap.
    target_marginal: [K + 1] the target seconds k drafts of one sequence add to the step, where known
    better than the cost model's c_tok * k (measured step times, `specscope/policy/adaptive.py`).
    """
    n, num_p = outlook.state.shape
    width = outlook.k_cap + 1
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ks = np.arange(width)
    base, terms, marg = StepPrices(costs, tuple(proposers), kv, 1, False, target_marginal)._serve_table(n, width)
    marg = marg[:, :width]
    best, best_rate = (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)), n / base
    rows = np.arange(n)
    capped = True if caps is None else ks <= caps[:, :, None]
    for subset in range(1, 2 ** num_p):
        allowed = np.array([(subset >> q) & 1 for q in range(num_p)], dtype=bool)
        fixed = base + sum(t.fixed for t, a in zip(terms, allowed) if a)
        rate, choice, sums = n / fixed, (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)), (float(n), 0.0)
        usable = (allowed[None, :, None] | (ks == 0)) & capped
        for _ in range(30):  # Dinkelbach: the rate rises to the optimum of sum(tokens) / (fixed + sum(cost))
            tokens, cost, _ = plan_scores(outlook, marg[None], rate)
            tokens = np.where(usable, tokens, -np.inf).reshape(n, -1)
            cost = cost.reshape(n, -1)
            pick = (tokens - rate * cost).argmax(axis=1)
            sums_new = (float(tokens[rows, pick].sum()), float(cost[rows, pick].sum()))
            new_rate = sums_new[0] / (fixed + sums_new[1])
            if new_rate <= rate * (1 + 1e-12):
                break
            rate, choice, sums = new_rate, (pick % width, pick // width), sums_new
        k, p = choice
        used = np.bincount(p[k > 0], minlength=num_p) > 0  # the set's fixed draft costs were assumed; charge
        score = sums[0] / (base + sum(t.fixed for t, u in zip(terms, used) if u) + sums[1])  # only those used
        if score > best_rate * (1 + 1e-12):
            best, best_rate = (k.astype(np.int64), np.where(k > 0, p, 0).astype(np.int64)), score
    return best


def choose_replicated(outlook: Outlook, costs: CostModel, proposers, kv: np.ndarray,
                      copies: int, caps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(k [n], proposer [n]) when each row is `copies` identical sequences forming their own batch (paper mode).

    kv: [n] each row's batch KV; caps: [n, P] as for `choose_batch`. Per row, the two-state plan (and
    proposer) with the highest long-run copies * tokens / seconds, a step with k drafts costing
    T(copies * (k + 1), KV) + draft + overhead.
    """
    n, num_p = outlook.state.shape
    width = outlook.k_cap + 1
    ks = np.arange(width, dtype=np.float64)
    step = _replicated_steps(costs, proposers, kv, copies, n, width)
    rate = copies / step[:, 0, 0]  # plain decoding's rate per row
    usable = None if caps is None else ks[None, None, :] <= np.asarray(caps)[:, :, None]
    for _ in range(30):  # per row: Dinkelbach on copies * tokens / time
        tokens, time, _ = plan_scores(outlook, step, rate[:, None] / copies)
        if usable is not None:
            tokens = np.where(usable, tokens, -np.inf)
        pick = np.argmax((tokens - rate[:, None, None] / copies * time).reshape(n, -1), axis=1)
        flat_t, flat_s = tokens.reshape(n, -1)[np.arange(n), pick], time.reshape(n, -1)[np.arange(n), pick]
        new_rate = np.maximum(copies * flat_t / flat_s, rate)
        if np.all(new_rate <= rate * (1 + 1e-12)):
            break
        rate = new_rate
    p, k = pick // width, pick % width
    return k.astype(np.int64), np.where(k > 0, p, 0).astype(np.int64)
