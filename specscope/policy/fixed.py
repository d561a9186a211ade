"""Policies that need no estimate: a fixed k every step, verifying a whole draft tree, and the oracle (the upper bound).

A tree proposer (`<proposer>@tree:<shape>`, `specscope/tree_spec.py`) offers one thing per step, its
whole tree: `TreeVerify` proposes its N nodes (the step commits the trace's acc_len, at most the
tree's depth). The oracle over a tree proposer proposes only the accepted path (acc_len - 1 drafts):
the bound of perfect selection among what the tree drafter grew (the simulator still charges the
tree's drafting).
"""

from __future__ import annotations

import numpy as np

from specscope.policy.base import Policy, Decision, StepView
from specscope.tree_spec import split_tree_key


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


class TreeVerify(Policy):
    """Verify the single tree proposer's whole tree every step: k = its N draft nodes."""

    name = "tree"
    memoryless = True

    def __init__(self, proposers: tuple[str, ...]):
        super().__init__(proposers)
        _, tree = split_tree_key(self.proposers[0])
        self.k = tree.num_nodes

    def decide(self, view: StepView) -> Decision:
        n = len(view.request)
        return Decision(np.full(n, self.k, dtype=np.int64), np.zeros(n, dtype=np.int64))
