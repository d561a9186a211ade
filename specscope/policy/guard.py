"""Counterfactual guard: follow the adaptive decision, or a simple fixed rule where one has been doing better.

The adaptive decision (`specscope/policy/decision.py`) rests on a model of acceptance; where the model is
off (bursty copying, acceptance that depends on the text, a depth estimated from few steps) a plain
fixed k can beat it. The guard keeps score of a set of experts on the steps actually run and each
step follows the one with the most committed tokens per second so far:
- expert 0: the model's decision;
- expert 1: plain decoding (no drafts for any row). Where no k pays (a compute-bound batch, a
  drafter too slow for the machine) not speculating is the best fixed choice, and the model, which
  keeps exploring (an upper-confidence prior, an idle sequence's optimism), loses a few percent to
  it. Without this expert, under the H100 preset EAGLE-priced drafts at batch size 128 (serve mode)
  ran 0.971 (chat) and 0.970 (code-edit) of plain decoding, and on this machine's cost model the
  self:24 draft at batch size 1 (summarize, paper mode) 0.967; with it 0.979, 0.982 and 0.991
  (benchmarks/bench_adaptive.py). Unseen experts are imputed with the model's optimistic estimates:
  imputing with its plain estimate instead made plain decoding a trap (nothing runs, so nothing
  corrects it; the n-gram on chat at batch sizes 8-32 on this machine's cost model ran 0.94-0.98
  of its best fixed k);
- fixed k for every k in `GuardParams.ks`, per proposer (k = min(k, what the proposer can offer)
  where the offer is known, as fixed-k does);
- two-state rules (k after a rejection, k after a fully accepted step) for the pairs of `pair_ks`.

Scoring uses only what verification revealed (censored chain outcomes), never the future. Say a
sequence ran k drafts of proposer q and a were accepted. An expert's k' drafts of q would have
committed:
- a < k (a rejection was seen):   1 + min(a, k')  exact: the first rejected draft ends any chain;
- a = k, k' <= k:                 1 + k'          exact;
- a = k, k' > k:                  1 + k + the expected further acceptances given the first k were
                                  accepted, from the model's per-depth continuation rates raised by
                                  `explore` standard deviations where a depth has little evidence
                                  (optimism: a depth that looked bad early is tried again; without
                                  it a guard following k = 2 never learns what a third draft earns);
- another proposer, or k = 0:     the model's expected tokens for (q', k').
An expert proposing nothing commits 1. Seconds: each expert's choice is priced by the cost model
as the decision prices it (serve: its share of the batch's step; paper mode: a row's B copies as a
batch of their own). The score is per text position, not per step: a step that committed c tokens
covers c positions, and an expert is charged, for each, its own seconds per token at that step
(seconds / its tokens). Scoring per step would favour long drafts: a policy that drafts little
steps through a copyable run many times, and every such step shows a long draft winning, while the
long draft itself would have crossed the run in one step. Sums decay by `decay` per step, so the
guard follows a workload whose character changes; for the first `warmup` steps the model decides.
With all experts scored on the same steps their differences are measured on common ground.

A proposer that stops its chains on draft confidence runs the longest chain on offer for whichever
expert is followed, cut where the drafts stop paying (`chains_ran`); every expert that would have
drafted that row with that proposer is charged the same cut chain, since it would have seen the same
drafts. Charging only the followed one let the stop's benefit go to whichever expert led when chains
began, which then stayed ahead for good (adaptive-combine on math, serve mode, B 4 under the H100
preset: fixed draft rules followed on 478 of 521 steps, at 0.92 of the throughput it reaches once
the charge is shared).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from specscope.policy.acceptance import HOT, Outlook, chain_survival

GUARD_KS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20)
MODEL = 0  # expert 0: the adaptive decision itself
PLAIN = 1  # expert 1 (`GuardParams.plain`): no drafts


@dataclass(frozen=True)
class GuardParams:
    """Guard settings (see the module docstring)."""

    ks: tuple[int, ...] = GUARD_KS  # fixed k experts, per proposer
    plain: bool = True  # expert PLAIN: plain decoding (k = 0 for every row)
    pair_ks: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 20)  # two-state experts: every (cold k, hot k) pair of these
    decay: float = 0.995  # weight of the past per step (memory ~ 1 / (1 - decay) steps)
    explore: float = 3.0  # standard deviations of optimism on a continuation rate when imputing censored steps
    warmup: int = 16  # steps scored before a fixed k may be followed (the model decides until then)


@dataclass
class _Pending:
    """One decided step, waiting for its outcome."""

    rows: np.ndarray  # [n] sequence rows (engine slots / simulator requests)
    k: np.ndarray | None  # [E, n] each expert's drafts per row; None: no expert could draft (`nothing_offered`)
    p: np.ndarray | None  # [E, n] each expert's proposer per row
    seconds: np.ndarray  # [E, n] each expert's step seconds, per row (its share of the batch's step)
    expected: np.ndarray | None  # [n, P, K + 1] the model's expected tokens (current state) per proposer and k
    tail: np.ndarray | None  # [P, K + 1] sum over drafts 1..k of P(draft j accepted | the first was)
    expert: int = MODEL  # the expert the step follows


class CounterfactualGuard:
    """Scores the experts on the steps run and says which one a step follows."""

    def __init__(self, num_proposers: int, params: GuardParams = GuardParams()):
        self.num_proposers, self.params = num_proposers, params
        fixed = [(k, k) for k in params.ks]  # the same experts every step (k beyond k_cap is cut to it)
        pairs = [(c, h) for c in params.pair_ks for h in params.pair_ks if c != h]
        # [R, 1] (cold k, hot k) of each rule: without the states (None) only the fixed ones
        self._rules = {with_states: np.array(fixed + (pairs if with_states else []), dtype=np.int64).reshape(-1, 2)
                       .T[:, :, None] for with_states in (False, True)}
        self.reset()

    def reset(self) -> None:
        self.covered, self.cost = None, None  # decayed sums: tokens the steps covered; [E] seconds each expert spends on them
        self.pending: _Pending | None = None
        self.steps = 0  # steps scored
        self.followed: Counter[int] = Counter()  # steps each expert was followed (diagnostics, tests)

    def experts(self, model_k: np.ndarray, model_p: np.ndarray, caps: np.ndarray | None, k_cap: int,
                state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(k, p) [E, n]: row 0 the model's decision, row 1 plain decoding (`GuardParams.plain`), then fixed k'
        per proposer (capped like fixed-k), then, given each row's state [n, P] (`Outlook.state`), the two-state
        rules (k after a rejection, k after a fully accepted step) of `pair_ks`."""
        n = len(model_k)
        cold_k, hot_k = self._rules[state is not None]  # [R, 1] each
        ks, ps = [np.asarray(model_k, dtype=np.int64)[None, :]], [np.asarray(model_p, dtype=np.int64)[None, :]]
        if self.params.plain:
            ks.append(np.zeros((1, n), dtype=np.int64))
            ps.append(np.zeros((1, n), dtype=np.int64))
        for q in range(self.num_proposers if len(cold_k) else 0):
            top = np.full(n, k_cap) if caps is None else np.minimum(k_cap, np.asarray(caps)[:, q])
            hot = np.zeros(n, dtype=bool) if state is None else np.asarray(state)[:, q] == HOT
            ks.append(np.minimum(np.where(hot[None, :], hot_k, cold_k), top[None, :]))
            ps.append(np.full((len(cold_k), n), q, dtype=np.int64))
        return np.concatenate(ks), np.concatenate(ps)

    def choose(self, rows: np.ndarray, outlook: Outlook, k: np.ndarray, p: np.ndarray,
               seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (k [n], p [n]) of the expert to follow now; remembers the step for `observe`.

        k, p: [E, n] from `experts`; seconds: [E, n] each expert's seconds per row (`batch_seconds` or
        `replicated_seconds`); outlook: the model's view of these rows, for imputing what was not seen."""
        expert = self._leader(len(k))
        cont = outlook.cont
        if outlook.evidence is not None:  # optimism where a depth is little explored: its fixed k gets tried
            bonus = self.params.explore * np.sqrt(cont * (1.0 - cont) / (outlook.evidence + 1.0))
            cont = np.minimum(cont + bonus, 1.0)
        _, tail = chain_survival(cont)
        self.pending = _Pending(np.asarray(rows), k.copy(), p, np.asarray(seconds, dtype=np.float64).copy(),
                                outlook.expected(), tail, expert)
        self.followed[expert] += 1
        return k[expert], p[expert]

    def nothing_offered(self, rows: np.ndarray, seconds: np.ndarray) -> None:
        """A step where no proposer can offer a draft to any row (the n-gram found no match): every expert, those
        of `experts` with states, proposes nothing. Scored as `choose` would score it, without building them.

        seconds: [n] each row's seconds of the step (plain decoding)."""
        num_experts = 1 + self.params.plain + self.num_proposers * self._rules[True].shape[1]
        expert = self._leader(num_experts)
        seconds = np.repeat(np.asarray(seconds, dtype=np.float64)[None, :], num_experts, axis=0)
        self.pending = _Pending(np.asarray(rows), None, None, seconds, None, None, expert)
        self.followed[expert] += 1

    def _leader(self, num_experts: int) -> int:
        """The expert with the most tokens per second so far (ties: the model; the model during warm-up)."""
        if self.steps >= self.params.warmup and len(self.cost) == num_experts and self.cost[MODEL] > 0:
            return int(np.argmax(self.covered / np.maximum(self.cost, 1e-30)))
        return MODEL

    def ran(self, k: np.ndarray, seconds: np.ndarray, p: np.ndarray | None = None) -> None:
        """The step did not run the followed expert's choice as decided (an engine's re-timing draft): k [n] is
        what ran, seconds [n] its seconds per row, p [n] its proposers where they changed; the expert is scored
        by what ran. (A chain cut on its draft confidence: `chains_ran`.)"""
        if self.pending is not None:
            self.pending.k[self.pending.expert] = k
            self.pending.seconds[self.pending.expert] = seconds
            if p is not None:
                self.pending.p = self.pending.p.copy()
                self.pending.p[self.pending.expert] = p

    def chains_ran(self, k: np.ndarray, chained: np.ndarray, prices) -> None:
        """What the step ran: k [n] drafts per row, where the rows `chained` [n] (bool) asked the followed
        expert's proposer for the longest chain on offer and stopped it on the drafts' confidences.

        Any expert that drafted on such a row with that proposer would have asked for the same chain and seen the
        same confidences, so it is charged the same drafts (else only the followed expert would get the stop's
        benefit, and whichever expert leads when chains start would stay ahead for good); every expert whose
        drafts changed is re-priced (prices: the step's `StepPrices`)."""
        step = self.pending
        if step is None:
            return
        followed = step.expert
        k = np.asarray(k, dtype=np.int64)
        same = np.asarray(chained, dtype=bool)[None, :] & (step.k > 0) & (step.p == step.p[followed][None, :])
        drafts = np.where(same, k[None, :], step.k)
        drafts[followed] = k
        changed = (drafts != step.k).any(axis=1)
        if changed.any():
            step.seconds[changed] = prices.choices(drafts[changed], step.p[changed])
            step.k = drafts

    def observe(self, rows: np.ndarray, proposer: np.ndarray, k: np.ndarray, accepted: np.ndarray) -> None:
        """The outcome of the pending step for these rows (those the engine still runs, in any order)."""
        step, self.pending = self.pending, None
        if step is None:
            return
        rows, proposer, k, accepted = (np.asarray(x, dtype=np.int64) for x in (rows, proposer, k, accepted))
        where = {int(r): i for i, r in enumerate(step.rows)}
        index = np.array([where.get(int(r), -1) for r in rows], dtype=np.int64)
        keep = index >= 0
        index, proposer, k, accepted = index[keep], proposer[keep], k[keep], np.minimum(accepted[keep], k[keep])
        ran = 1.0 + accepted  # [m] what the step committed: the text it covered
        if step.k is None:  # `nothing_offered`: every expert committed one token per row, in the step's seconds
            self._score(ran, (ran[None, :] * step.seconds[:, index]).sum(axis=1))
            return
        ek, ep = step.k[:, index], step.p[:, index]  # [E, m]
        imputed = step.expected[index[None, :], ep, np.minimum(ek, step.expected.shape[-1] - 1)]
        same = (ep == proposer[None, :]) & (k[None, :] > 0)
        seen = np.minimum(accepted[None, :], ek)  # exact where a rejection was seen or k' <= k
        width = step.tail.shape[1] - 1
        top, kk = np.minimum(ek, width), np.minimum(k, width)[None, :].repeat(len(ek), 0)
        t_top, t_k = step.tail[ep, top], step.tail[ep, kk]
        at_k = t_k - step.tail[ep, np.maximum(kk - 1, 0)]  # P(draft k accepted | the first was)
        beyond = np.where(at_k > 0, (t_top - t_k) / np.maximum(at_k, 1e-12), 0.0)
        censored = (accepted == k)[None, :] & (ek > k[None, :])
        exact = 1.0 + np.where(censored, k[None, :] + beyond, seen)
        tokens = np.where(ek == 0, 1.0, np.where(same, exact, imputed))  # [E, m]
        self._score(ran, (ran[None, :] * step.seconds[:, index] / tokens).sum(axis=1))

    def _score(self, ran: np.ndarray, per_token: np.ndarray) -> None:
        """Add a step that covered ran [m] tokens per row, at per_token [E] seconds for each expert."""
        d = self.params.decay
        if self.covered is None or len(self.cost) != len(per_token):
            self.covered, self.cost = 0.0, np.zeros_like(per_token)
        self.covered = d * self.covered + ran.sum()
        self.steps += 1
        self.cost = d * self.cost + per_token
