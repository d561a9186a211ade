"""Adaptive policies for the replays: `adaptive` (choose k) and `adaptive-combine` (choose proposer and k).

Both are thin wrappers around the estimator (`acceptance.py`: its docstring documents the estimator and its
parameters) and the decision (`decision.py`: the objective), shared with the engine. What they read from a
`StepView`: the requests and (batch-aware) the batch size and KV, plus the outcome of their own past
steps through `observe`: tokens committed c = min(acc_len, k + 1), i.e. c - 1 accepted out of k —
the censored observation a real engine gets. Never `view.acc_len` (the future). Where the trace
tells how many drafts the n-gram can offer now (`ReplayTrace.draft_cap`: its lookup over the tokens
committed so far), that cap bounds the decision, as in the engine.

- `adaptive`          one proposer: k per request and step, k = 0 when speculation does not pay;
- `adaptive-combine`  two or more proposers: per request and step the proposer and k with the larger
                      expected gain, the draft cost of each proposer that runs charged once.

Each decision goes through the counterfactual guard (`specscope/policy/guard.py`), which may follow
a fixed k instead. Where the trace records the chosen proposer's draft confidences
(`ReplayTrace.confident`), a step asks for the longest chain on offer and the replay hands the
policy its drafts' confidences (`stop_drafting`): the chain ends where the calibrated survival no
longer pays for a draft's seconds at the batch's expected rate (`specscope/policy/confidence.py`);
the guard charges that cut chain to every expert that would have drafted it
(`CounterfactualGuard.chains_ran`), and the calibration learns from the drafts that verification
labelled (those accepted and the first rejected one: all at positions now committed).
A request's last step is not observed: the trace's acc_len there is cut by the end of its output,
which is not a rejection.

The first decode step (position 1) proposes nothing: a trace records acc_len 1 there by convention
(position 0 is the prefill's token), a static fact of the format rather than an observation.

In serve mode every view is one batch (its KV is the batch's); in paper mode (`view.replicated`)
each row is B identical copies of a request forming their own batch.
"""

from __future__ import annotations

import numpy as np

from specscope.costs.model import CostModel
from specscope.policy.acceptance import AcceptanceEstimate, AdaptiveParams
from specscope.policy.base import Policy, Decision, StepView
from specscope.policy.confidence import (
    ConfidenceCalibration,
    ConfidenceParams,
    kept_drafts,
)
from specscope.policy.decision import StepPrices, choose_batch, choose_replicated
from specscope.policy.guard import CounterfactualGuard, GuardParams


class Adaptive(Policy):
    """Goodput-maximising k (and proposer, with several) from each request's own acceptance history."""

    batch_aware = True
    reference_pricing = False  # a step proposing nothing runs no drafter (paper mode too)
    reads_confidence = True

    def __init__(self, proposers: tuple[str, ...], costs: CostModel, name: str = "adaptive",
                 params: AdaptiveParams = AdaptiveParams(), guard: GuardParams = GuardParams(),
                 confidence: ConfidenceParams = ConfidenceParams(depths=1)):
        super().__init__(proposers)
        self.costs, self.name, self.params = costs, name, params
        self.estimate = AcceptanceEstimate(len(self.proposers), params)
        self.guard = CounterfactualGuard(len(self.proposers), guard)
        # One depth: a trace records each position's first-draft confidence, which stands for draft j of a
        # chain at the position it drafts (the draft model's chain drafts exactly that), so its outcomes do
        # not depend on the depth; calibrating depths apart would only split the evidence.
        self.calibration = ConfidenceCalibration(len(self.proposers), confidence)
        self._step = None  # what `stop_drafting` needs of the step just proposed

    def reset(self, num_requests: int) -> None:
        self.estimate.reset(num_requests)
        self.guard.reset()
        self.calibration.reset()
        self._step = None

    def _k_cap(self, view: StepView) -> int:
        k_max = getattr(getattr(view.trace, "source", None), "k_max", None)
        return min(self.params.k_cap, k_max) if k_max else self.params.k_cap

    def decide(self, view: StepView) -> Decision:
        k_cap = self._k_cap(view)
        outlook = self.estimate.outlook(view.request, k_cap)
        caps = None
        if getattr(view.trace, "draft_cap", None) is not None:  # the n-gram's match, known before deciding
            caps = view.trace.draft_cap[view.trace.rows(view.request, view.position)]
        replicated = view.batch_size is None or view.replicated
        copies = 1 if view.batch_size is None else view.batch_size
        kv = 0.0 if view.batch_size is None else view.batch_kv
        if replicated:
            k, p = choose_replicated(outlook, self.costs, self.proposers, kv, copies, caps)
        else:
            k, p = choose_batch(outlook, self.costs, self.proposers, float(kv[0]), caps)
        ks, ps = self.guard.experts(k, p, caps, outlook.k_cap, outlook.state)
        ks = np.where(view.position[None, :] <= 1, 0, ks)
        prices = StepPrices(self.costs, self.proposers, kv if replicated else float(kv[0]), copies, replicated)
        k, p = self.guard.choose(view.request, outlook, ks, ps, prices.choices(ks, ps))
        confident = getattr(view.trace, "confident", None)
        if confident is not None:  # a confidence stop may cut the chain: plan the longest one on offer
            rows = np.arange(len(k))
            tokens, spent = outlook.expected()[rows, p, k], prices.seconds(k, p)
            rate = tokens / spent if replicated else np.full(len(k), tokens.sum() / spent.sum())  # per copy / batch
            top = np.full(len(k), k_cap) if caps is None else np.minimum(k_cap, caps[rows, p])
            k = np.where((k > 0) & confident[p], np.maximum(k, top), k)
            floor = rate[:, None] * prices.per_draft(p, max(int(k.max(initial=0)), 1))  # draft j's seconds, in tokens
            self._step = (k, p, prices, floor)
        return Decision(k, p)

    def stop_drafting(self, view: StepView, index: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        k, p, prices, floor = self._step
        width = confidence.shape[1]
        kept = kept_drafts(self.calibration.survival(p[index], confidence), k[index], floor[index, :width])
        ran, chained = k.copy(), np.zeros(len(k), dtype=bool)
        ran[index], chained[index] = kept, True
        self.guard.chains_ran(ran, chained, prices)
        return kept

    def observe(self, view: StepView, decision: Decision, committed: np.ndarray) -> None:
        committed = np.asarray(committed)
        going = view.position + committed < view.trace.gen_len[view.request]  # a finished request teaches nothing:
        rows, q, k, accepted = (x[going] for x in (view.request, decision.proposer, decision.k, committed - 1))
        self.estimate.observe(rows, q, k, accepted)  # its last step ended with the text, not with a rejection
        self.guard.observe(rows, q, k, accepted)
        confident = getattr(view.trace, "confident", None)
        if confident is not None:
            use = np.flatnonzero(going & (decision.k > 0) & confident[decision.proposer])
            if use.size:
                trace, q_use, k_use = view.trace, decision.proposer[use], decision.k[use]
                drafted = trace.drafted_confidence(trace.rows(view.request[use], view.position[use]), k_use, q_use)
                self.calibration.observe(q_use, drafted, k_use, committed[use] - 1)
