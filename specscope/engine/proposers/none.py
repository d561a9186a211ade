"""The empty proposer: no speculation, every step is a plain decode step.

`--method none` runs plain autoregressive decoding through the same engine as the SD methods, so it is
the baseline every speedup divides by.
"""

from __future__ import annotations

import numpy as np

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.settings import BASELINE


class NoProposer(Proposer):
    """Proposes nothing."""

    name = BASELINE

    def propose(self, batch: ProposerInput) -> Proposal:
        return Proposal.from_lists([np.zeros(0, dtype=np.int64)] * len(batch.slots))
