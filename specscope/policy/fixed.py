"""Policies that need no estimate: a fixed k every step, and the oracle (the upper bound).
"""

from __future__ import annotations

import numpy as np

from specscope.policy.base import Policy, Decision, StepView


class FixedK(Policy):
    """Propose K drafts every step from the single proposer; K = 0 is plain decoding."""

    memoryless = True

    def __init__(self, proposers: tuple[str, ...], k: int):
        super().__init__(proposers)
        self.k = k
        self.name = f"fixed-{k}"

    @property
    def speculates(self) -> bool:
        return self.k > 0

    def decide(self, view: StepView) -> Decision:
        n = len(view.request)
        return Decision(np.full(n, self.k, dtype=np.int64), np.zeros(n, dtype=np.int64))


class Oracle(Policy):
    """Propose exactly what will be accepted; over several proposers, the best one per step."""

    name = "oracle"
    memoryless = True

    def decide(self, view: StepView) -> Decision:
        best = np.argmax(view.acc_len, axis=1)  # first proposer wins ties
        acc = view.acc_len[np.arange(len(best)), best]
        return Decision(acc - 1, best)
