"""What a draft policy sees and decides each step, and the interface every policy implements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class StepView:
    """The sequences taking a step now and what a policy may know about them."""

    request: np.ndarray  # [n] request index (also the key of any per-request policy state)
    position: np.ndarray  # [n] output tokens committed so far
    acc_len: np.ndarray  # [n, P] ground-truth acc_len here, per proposer (oracles only)
    batch_size: int | None = None  # batch size B (batch-aware policies only)
    batch_kv: np.ndarray | None = None  # [n] KV tokens held by each sequence's batch (batch-aware only)
    trace: Any = None  # the ReplayTrace, for per-position signals
    replicated: bool = False  # paper mode: each row is batch_size identical copies, a batch of their own


@dataclass(frozen=True)
class Decision:
    """What each sequence proposes this step."""

    k: np.ndarray  # [n] int, draft tokens (0: no speculation this step)
    proposer: np.ndarray  # [n] int, index into the proposer set (meaningful where k > 0)


class Policy:
    """Base class: stateless, batch-unaware, speculating."""

    name: str = ""
    batch_aware: ClassVar[bool] = False  # reads view.batch_size / view.batch_kv
    memoryless: ClassVar[bool] = False  # decides from (request, position, acc_len there) alone: no state
    # Paper mode prices the policy exactly as the published simulator does, quirks included (a linear
    # draft is charged on every step, even one proposing nothing). False: charged only where k > 0.
    reference_pricing: ClassVar[bool] = True
    reads_confidence: ClassVar[bool] = False  # stops its chains on draft confidence (`stop_drafting`)

    def __init__(self, proposers: tuple[str, ...]):
        self.proposers = tuple(proposers)

    @property
    def speculates(self) -> bool:
        """False for a policy that never runs a proposer (plain decoding)."""
        return True

    def reset(self, num_requests: int) -> None:
        """Forget per-request state before a replay."""

    def decide(self, view: StepView) -> Decision:
        raise NotImplementedError

    def stop_drafting(self, view: StepView, index: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Drafts to keep [m] for the view's rows `index` [m], given the confidences [m, K] of the drafts they
        proposed (NaN past each row's k). Only asked when `reads_confidence`; the default keeps them all."""
        return np.sum(~np.isnan(confidence), axis=1)

    def observe(self, view: StepView, decision: Decision, committed: np.ndarray) -> None:
        """Called after each step with the drafts that ran (`decision`) and the tokens each sequence committed."""
