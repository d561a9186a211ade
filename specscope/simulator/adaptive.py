"""Adaptive policies for the replays: `adaptive` (choose k) and `adaptive-combine` (choose proposer and k).

Both are thin wrappers around `specscope.adaptive` (estimator and decision, shared with the engine;
its docstring documents the estimator, its parameters and the objective). What they read from a
`StepView`: the requests and (batch-aware) the batch size and KV, plus the outcome of their own past
steps through `observe`: tokens committed c = min(acc_len, k + 1), i.e. c - 1 accepted out of k —
the censored observation a real engine gets. Never `view.acc_len` (the future). Where the trace
tells how many drafts the n-gram can offer now (`ReplayTrace.draft_cap`: its lookup over the tokens
committed so far), that cap bounds the decision, as in the engine.

- `adaptive`          one proposer: k per request and step, k = 0 when speculation does not pay;
- `adaptive-combine`  two or more proposers: per request and step the proposer and k with the larger
                      expected gain, the draft cost of each proposer that runs charged once.

The first decode step (position 1) proposes nothing: a trace records acc_len 1 there by convention
(position 0 is the prefill's token), a static fact of the format rather than an observation.

In serve mode every view is one batch (its KV is the batch's); in paper mode (`view.replicated`)
each row is B identical copies of a request forming their own batch.
"""

from __future__ import annotations

import numpy as np

from specscope.adaptive import AcceptanceEstimate, AdaptiveParams, choose_batch, choose_replicated
from specscope.costs import CostModel
from specscope.simulator.policies import Policy, Proposal, StepView


class Adaptive(Policy):
    """Goodput-maximising k (and proposer, with several) from each request's own acceptance history."""

    batch_aware = True
    reference_pricing = False  # a step proposing nothing runs no drafter (paper mode too)

    def __init__(self, proposers: tuple[str, ...], costs: CostModel, name: str = "adaptive",
                 params: AdaptiveParams = AdaptiveParams()):
        super().__init__(proposers)
        self.costs, self.name, self.params = costs, name, params
        self.estimate = AcceptanceEstimate(len(self.proposers), params)

    def reset(self, num_requests: int) -> None:
        self.estimate.reset(num_requests)

    def _k_cap(self, view: StepView) -> int:
        k_max = getattr(getattr(view.trace, "source", None), "k_max", None)
        return min(self.params.k_cap, k_max) if k_max else self.params.k_cap

    def propose(self, view: StepView) -> Proposal:
        outlook = self.estimate.outlook(view.request, self._k_cap(view))
        caps = None
        if getattr(view.trace, "draft_cap", None) is not None:  # the n-gram's match, known before deciding
            caps = view.trace.draft_cap[view.trace.rows(view.request, view.position)]
        if view.batch_size is None:  # no batch given: each request alone
            k, p = choose_replicated(outlook, self.costs, self.proposers, 0.0, 1, caps)
        elif view.replicated:
            k, p = choose_replicated(outlook, self.costs, self.proposers, view.batch_kv, view.batch_size, caps)
        else:
            k, p = choose_batch(outlook, self.costs, self.proposers, float(view.batch_kv[0]), caps)
        return Proposal(np.where(view.position <= 1, 0, k), p)

    def observe(self, view: StepView, proposal: Proposal, committed: np.ndarray) -> None:
        self.estimate.observe(view.request, proposal.proposer, proposal.k, np.asarray(committed) - 1)
