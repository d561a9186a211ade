"""The acceptance estimate behind the adaptive policies: each sequence's expected tokens per step, learnt online.

Used by `specscope/policy/adaptive.py`, which the simulator's replays and the engine's drafting
(`specscope/engine/drafting.py`) both run, so the two cannot drift. Only what is known when a step is
decided is used: the sequence's own past outcomes, the batch (size, KV tokens) and the cost model.

Estimator (`AcceptanceEstimate`), per sequence and proposer. Model: the first draft token is
accepted with probability `first`, every later one (given the previous was) with probability
`cont`, so a step proposing k >= 1 drafts commits in expectation

    E(k) = 1 + first * (1 + cont + ... + cont^(k - 1))          (E(0) = 1: a plain decode step)

Two rates rather than one because acceptance is bursty: an n-gram proposer either copies a long
span or misses at once, which a single per-token rate cannot express. What a step teaches (greedy
chain verification): proposing k and accepting a (committing a + 1) is one trial of `first`
(success iff a >= 1) and, when a >= 1, a - 1 successes of `cont` plus one failure iff a < k
(a = k is censored: no failure seen). `first` is kept separately for two states: "hot" (the
proposer's last step on this sequence accepted all its drafts — the text is in a run the proposer
predicts well, e.g. copying) and "cold" (anything else). Per sequence, `first` is a decayed Beta
estimate shrunk towards a pooled rate:

    successes <- decay * successes + s      failures <- decay * failures + f
    first      = (successes + optimism + w * pool) / (successes + failures + optimism + w)

- pool: the proposer's first-draft rate over all sequences (per state), one observation per step
  (the step's sequences are averaged: they are often alike, e.g. the same position of similar
  answers), decayed by `pool_decay`; in a step where no sequence runs the proposer it fades by
  `decay` instead, so a proposer the policy stopped using is soon tried again;
- w: how much the pool counts against the sequence's own history. Some proposers' acceptance is a
  property of the sequence (n-gram on code edits), others' barely depends on it; so each candidate
  in `prior_weights` is scored online by the log-loss of its first-draft predictions (made before
  each outcome), and the best so far is used;
- explore: the pool that decisions shrink towards is an upper confidence bound,
  pool + explore * sqrt(pool * (1 - pool) / (n + 1)), n = the steps that ever ran the proposer (this
  count never decays, so the bonus vanishes once the proposer has been tried). Without it a prior
  below the break-even rate of the batch (a large batch needs a high rate for a draft to pay) is
  never tested: nothing runs, so nothing is observed. Log-loss scoring uses the plain pool;
- optimism: phantom successes for a sequence whose last step proposed nothing. A policy that stops
  speculating stops observing, so pessimistic errors would persist while optimistic ones are
  corrected at once; the phantom success makes an idle sequence lean towards trying again.
Steps that do not run a proposer decay its counts in both states (s = f = 0), so an estimate that
once talked the policy out of speculating drifts back to the pool. `cont` is pooled per proposer and
depth j (P(draft j + 1 accepted | drafts 1..j were)), one observation per step and depth (the
outcomes of the step's sequences at that depth averaged, as for the pool: a batch of answers that
open alike once set a depth to ~0 for good with 22 identical rejections); a depth with little evidence borrows the rate
of the depth before it (that rate is its prior, worth one observation), and the first continuation
borrows the proposer's pooled first-draft rate (a fixed 0.5 there kept policies at k = 1 for good:
k = 2 was never tried, so the second depth stayed at its prior).
Parameters (`AdaptiveParams`): prior_mean 0.5, prior_weights (16, 4, 1, 64) (ties: the first),
decay 0.85 (about seven steps of memory), pool_decay 0.99, explore 1, optimism 1, k_cap 20. They are
settings, not fitted constants; benchmarks/bench_adaptive.py measures them.

The policies run the decision behind `specscope/policy/guard.py`, which scores it against fixed
k (and two-state rules) on what verification revealed and follows whichever has done better. A
proposer that reports its confidence per draft also stops its chains mid-step
(`specscope/policy/confidence.py`), priced by `StepPrices` as the decision prices a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

DEFAULT_K_CAP = 20


COLD, HOT = 0, 1


@dataclass(frozen=True)
class AdaptiveParams:
    """Estimator and decision parameters (see the module docstring)."""

    prior_mean: float = 0.5  # acceptance probability assumed before any observation
    prior_weights: tuple[float, ...] = (16.0, 4.0, 1.0, 64.0)  # candidates: observations the pooled prior is worth (ties: first)
    decay: float = 0.85  # weight of the past per step (memory ~ 1 / (1 - decay) steps)
    explore: float = 1.0  # standard deviations of upper-confidence bonus on the pooled first-draft rate
    optimism: float = 1.0  # phantom successes in the first-draft estimate of a sequence that proposed nothing last step
    pool_decay: float = 0.99  # weight of the past per step for the pooled (all-sequence) first-draft counts
    k_cap: int = DEFAULT_K_CAP  # most drafts per step


class AcceptanceEstimate:
    """Running acceptance estimates per (sequence, proposer), from censored chain-verification outcomes."""

    def __init__(self, num_proposers: int, params: AdaptiveParams = AdaptiveParams()):
        self.num_proposers, self.params = num_proposers, params
        self.weights = np.asarray(params.prior_weights, dtype=np.float64)  # [W] the candidate prior weights
        self.reset(0)

    def reset(self, num_sequences: int) -> None:
        """Forget everything (pooled counts too); room for `num_sequences` sequences (rows)."""
        shape, cap = (num_sequences, self.num_proposers), self.params.k_cap
        self.first_s, self.first_f = np.zeros(shape + (2,)), np.zeros(shape + (2,))  # per state COLD/HOT
        self.hot = np.zeros(shape, dtype=np.int64)  # HOT: the proposer's last step accepted all its drafts
        self.idle = np.zeros(num_sequences, dtype=bool)  # the sequence's last step proposed nothing
        self.pool_s, self.pool_f = np.zeros((self.num_proposers, 2)), np.zeros((self.num_proposers, 2))
        self.pool_seen = np.zeros(self.num_proposers)  # steps that ran each proposer, ever (not decayed)
        self.loss = np.zeros((self.num_proposers, len(self.params.prior_weights)))  # [P, W]: log-loss of each weight
        self.at_risk = np.zeros((self.num_proposers, cap))  # [P, j]: steps that had drafts 1..j accepted and a j+1-th
        self.stopped = np.zeros((self.num_proposers, cap))  # [P, j]: ... whose j+1-th draft was rejected

    def clear(self, rows) -> None:
        """A new sequence takes these rows (engine slots); pooled counts stay."""
        for arr in (self.first_s, self.first_f, self.hot, self.idle):
            arr[rows] = 0

    def _rate(self, s, f):
        """A pooled rate from (successes, failures); the prior mean counts as one observation."""
        return (s + self.params.prior_mean) / (s + f + 1.0)

    def _pool(self) -> np.ndarray:
        """[P, 2] pooled first-draft rate per proposer and state."""
        return self._rate(self.pool_s, self.pool_f)

    def _pool_bound(self) -> np.ndarray:
        """[P, 2] the pooled rate plus its exploration bonus (what decisions shrink towards)."""
        pool = self._pool()
        bonus = self.params.explore * np.sqrt(pool * (1.0 - pool) / (self.pool_seen[:, None] + 1.0))
        return np.minimum(pool + bonus, 1.0)

    @staticmethod
    def _shrunk(s, f, pool, w, lift=0.0):
        """First-draft rate from a sequence's (successes, failures), shrunk towards `pool` with weight `w`."""
        return (s + lift + w * pool) / (s + f + lift + w)

    def prior_weight(self) -> np.ndarray:
        """[P] per proposer, the candidate prior weight that has predicted first-draft outcomes best so far."""
        return self.weights[self.loss.argmin(axis=1)]

    def outlook(self, rows: np.ndarray, k_cap: int) -> "Outlook":
        """What a step of these rows can expect, for k = 0 .. k_cap drafts (the decision's input)."""
        p = self.params
        rows = np.asarray(rows, dtype=np.int64)
        pool = self._pool_bound()
        s, f = self.first_s[rows], self.first_f[rows]  # [n, P, 2]
        w = self.prior_weight()[None, :, None]
        lift = p.optimism * self.idle[rows][:, None, None]  # idle: no news, so lean towards trying again
        first = self._shrunk(s, f, pool[None], w, lift)
        k_cap = min(k_cap, self.params.k_cap)
        cont = np.empty((self.num_proposers, k_cap))
        cont[:, 0] = p.prior_mean  # unused (the first draft has its own rate)
        start = self._rate(self.pool_s.sum(1), self.pool_f.sum(1)).tolist()  # pooled first-draft rate, both states
        risk, stopped = self.at_risk[:, :k_cap].tolist(), self.stopped[:, :k_cap].tolist()
        for q, prev in enumerate(start):  # (Python floats: this short recurrence costs less than numpy calls)
            for j in range(1, k_cap):  # an unexplored depth borrows the rate of the depth before it
                prev = (risk[q][j] - stopped[q][j] + prev) / (risk[q][j] + 1.0)
                cont[q, j] = prev
        return Outlook(first, cont, self.hot[rows], self.at_risk[:, :k_cap].copy())

    def observe(self, rows: np.ndarray, proposer: np.ndarray, k: np.ndarray, accepted: np.ndarray) -> None:
        """Record one step of these rows: k drafts from `proposer` (k = 0: none ran), a of them accepted."""
        rows, proposer, k, accepted = (np.asarray(x, dtype=np.int64) for x in (rows, proposer, k, accepted))
        d = self.params.decay
        ran = k > 0
        if not ran.any():  # nothing ran (e.g. no n-gram match): what follows reduces to fading, done directly
            self.first_s[rows] *= d
            self.first_f[rows] *= d
            self.hot[rows] = COLD
            self.pool_s *= d
            self.pool_f *= d
            self.idle[rows] = True
            return
        idle = np.ones((len(rows), self.num_proposers), dtype=bool)
        idle[np.flatnonzero(ran), proposer[ran]] = False
        ir, iq = np.nonzero(idle)  # proposers that did not run: the sequence's counts fade to the pool
        self.first_s[rows[ir], iq, :] *= d
        self.first_f[rows[ir], iq, :] *= d
        self.hot[rows[ir], iq] = COLD
        r, q, k, a = rows[ran], proposer[ran], k[ran], np.minimum(accepted[ran], k[ran])
        state = self.hot[r, q]
        s, f = self.first_s[r, q, state][:, None], self.first_f[r, q, state][:, None]
        guess = self._shrunk(s, f, self._pool()[q, state][:, None], self.weights[None, :])  # [m, W] before this step
        guess = np.minimum(np.maximum(guess, 1e-4), 1 - 1e-4)
        hit = (a >= 1)[:, None]
        np.add.at(self.loss, q, -np.log(np.where(hit, guess, 1.0 - guess)))
        self.first_s[r, q, state] = d * self.first_s[r, q, state] + (a >= 1)
        self.first_f[r, q, state] = d * self.first_f[r, q, state] + (a == 0)
        active = np.zeros(self.num_proposers, dtype=bool)
        active[q] = True  # a proposer no sequence ran this step forgets its pool as fast as a sequence would
        self.pool_seen += active
        fade = np.where(active, self.params.pool_decay, d)[:, None]
        self.pool_s *= fade
        self.pool_f *= fade
        share = 1.0 / np.bincount(q, minlength=self.num_proposers)[q]  # a step is one observation per proposer:
        np.add.at(self.pool_s, (q, state), share * (a >= 1))  # its sequences' outcomes are averaged, as they
        np.add.at(self.pool_f, (q, state), share * (a == 0))  # are often alike (same position, same text)
        j = np.arange(self.params.k_cap)[None, :]
        risk = (j >= 1) & (j <= np.minimum(a, k - 1)[:, None])  # drafts 1..j accepted and a (j+1)-th proposed
        stop = (j == a[:, None]) & (a < k)[:, None] & (j >= 1)
        count = np.zeros((self.num_proposers, self.params.k_cap))
        np.add.at(count, q, risk.astype(np.float64))  # the depth too learns one observation per step: its
        weight = 1.0 / np.maximum(count[q], 1.0)  # sequences are averaged, like the pool's
        np.add.at(self.at_risk, q, risk * weight)
        np.add.at(self.stopped, q, stop * weight)
        self.hot[r, q] = np.where(a == k, HOT, COLD)
        self.idle[rows] = ~ran


def chain_survival(cont: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From continuation rates cont [P, K] (column j: P(draft j + 1 accepted | drafts 1..j were)):
    survive [P, K], column j - 1 = P(draft j accepted | the first was), and its running sum
    tail [P, K + 1], column k = expected drafts accepted among the first k, given the first was."""
    survive = np.ones_like(cont, dtype=np.float64)
    np.cumprod(cont[:, 1:], axis=1, out=survive[:, 1:])
    tail = np.zeros((len(cont), cont.shape[1] + 1))
    np.cumsum(survive, axis=1, out=tail[:, 1:])
    return survive, tail


@dataclass(frozen=True)
class Outlook:
    """Acceptance model of n sequences for the decision: two states, first-draft and continuation rates."""

    first: np.ndarray  # [n, P, 2] P(first draft accepted) in state COLD / HOT
    cont: np.ndarray  # [P, K] index j >= 1: P(draft j + 1 accepted | drafts 1..j were); column 0 unused
    state: np.ndarray  # [n, P] the state each sequence is in now, per proposer
    evidence: np.ndarray | None = None  # [P, K] observations behind each continuation rate (None: unknown)

    @property
    def k_cap(self) -> int:
        return self.cont.shape[1]

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, full) [n, P, 2, K + 1]: expected tokens committed by k drafts per state, and P(all k accepted)."""
        return self._tables

    @cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:  # computed once: the decision's iterations reuse it
        cont = self.cont
        survive, tail = chain_survival(cont)
        tokens = 1.0 + self.first[..., None] * tail[None, :, None, :]
        reach = np.zeros_like(tail)  # column k: P(draft k accepted | the first was); 0 drafts: never all accepted
        reach[:, 1:] = survive
        full = self.first[..., None] * reach[None, :, None, :]
        return tokens, full

    def expected(self) -> np.ndarray:
        """[n, P, K + 1] expected tokens a step now commits with k drafts (the current state's row)."""
        return self._expected

    @cached_property
    def _expected(self) -> np.ndarray:
        tokens, _ = self.tables()
        n, num_p = self.state.shape
        return tokens[np.arange(n)[:, None], np.arange(num_p)[None, :], self.state]


def plan_scores(outlook: Outlook, step_cost: np.ndarray, rate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long-run (tokens, cost) per step of each k for the state a sequence is in, and the k it implies now.

    Plans: in HOT, the k maximising tokens - rate * cost of that step (myopic); in COLD, any k, scored
    over the long run: a COLD step whose k drafts are all accepted turns the sequence HOT, where it
    stays while its HOT steps are fully accepted. This values a probe that finds a run the proposer
    predicts well (e.g. text to copy) even where the probe alone does not pay. A HOT sequence's
    entries are its one-step values. step_cost: [..., K + 1], broadcast against [n, P].
    rate: tokens per second used to trade tokens against seconds (scalar or [n, 1]).
    Returns (tokens, cost) [n, P, K + 1] indexed by the k proposed now.
    """
    tokens, full = outlook.tables()  # [n, P, 2, K + 1]
    n, num_p = tokens.shape[:2]
    cost = np.zeros((n, num_p, tokens.shape[-1])) + step_cost  # (np.broadcast_to costs more on small arrays)
    scale = rate.reshape(-1, 1, 1) if isinstance(rate, np.ndarray) else rate
    hot_pick = np.argmax(tokens[:, :, HOT, :] - scale * cost, axis=-1)  # [n, P]
    at = (np.arange(n)[:, None], np.arange(num_p)[None, :], hot_pick)  # each (sequence, proposer)'s HOT k
    hot_tokens, hot_cost = tokens[:, :, HOT, :][at][..., None], cost[at][..., None]  # [n, P, 1]
    stay = np.minimum(full[:, :, HOT, :][at][..., None], 1.0 - 1e-9)
    go = full[:, :, COLD, :]  # [n, P, K + 1]
    share = go / (go + 1.0 - stay)  # long-run share of HOT steps under the plan (k_cold = k, k_hot)
    cold_tokens = (1 - share) * tokens[:, :, COLD, :] + share * hot_tokens
    cold_cost = (1 - share) * cost + share * hot_cost
    is_hot = (outlook.state == HOT)[..., None]
    return np.where(is_hot, tokens[:, :, HOT, :], cold_tokens), np.where(is_hot, cost, cold_cost), hot_pick
