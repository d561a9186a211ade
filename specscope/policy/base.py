"""What a draft policy sees and decides each step, and the interface every policy implements.

A policy is a small class with one job, `decide(view) -> Decision`, vectorised over the sequences of
a step: how many draft tokens (k) each proposes, and from which proposer. The simulator's replays
(paper, serve) and the engine's drafter (`specscope/engine/drafting.py`) call it and never look at
which policy it is, so a new policy is one class plus one entry in `registry.POLICIES`.

What a policy may read (`StepView`):
- `request`, `position`: which sequences step now (the replay's request index, the engine's slot) and
  how many output tokens each has committed;
- `acc_len` [n, P]: the acc_len a step here would achieve with each proposer. This is the trace's
  ground truth, i.e. the future: only oracle policies may read it (None in the engine);
- `batch_size`, `batch_kv`: the batch the step runs in (replays set them only for policies with
  `batch_aware = True`; others get None, which lets the serve replay schedule requests without a
  step loop);
- `trace`: the replay trace, for per-position signals a policy may use (None in the engine);
- `replicated`: True in paper mode, where each row stands for `batch_size` identical copies of its
  request forming their own batch (`batch_kv` is then that row's batch KV);
- what the engine knows before deciding: `caps` [n, P] (the drafts each proposer can offer each
  sequence now: the n-gram drafts first), `k_cap`, `confident` [P] (proposers that report a
  confidence per draft), `offers_known` (every proposer's offer is in `caps`); and, for `observe`,
  `going` [n] (sequences that did not finish this step).
A policy with `reads_confidence = True` may stop a step's chain early: `stop_drafting` gets the
confidences of the drafts it asked for and returns how many to keep (the engine can also stop a
chain between draft passes: `keep_drafting`). `observe` then gets the drafts that ran.
Stateful policies keep per-request state, reset by `reset(num_requests)` and updated by
`observe(view, decision, committed)` after every step. A policy that decides from the view's row
alone (no state, no batch) says `memoryless = True`; a replay may then ask it about all positions
of all requests in one call.
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
    caps: np.ndarray | None = None  # [n, P] drafts each proposer can offer each row now (engine; None: unknown)
    k_cap: int | None = None  # most drafts a row may take this step (engine; None: the trace's k_max)
    confident: np.ndarray | None = None  # [P] bool: proposers that report a confidence per draft (engine)
    offers_known: bool = False  # every proposer drafted already: `caps` is all there is (engine)
    going: np.ndarray | None = None  # [n] bool, for `observe`: rows still running after this step (engine)


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
    # Decides as the run goes, from what it observes: its own host time every step is a cost of the run
    # (`CostModel.decision_seconds`; the engine measures it as `StepRecord.decision`).
    online: ClassVar[bool] = False

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

    def stop_drafting(self, view: StepView, index: np.ndarray, confidence: np.ndarray, ran: np.ndarray | None = None,
                      drafted: np.ndarray | None = None, sampled: np.ndarray | None = None) -> np.ndarray:
        """Drafts to keep [m] for the view's rows `index` [m], given the confidences [m, K] of the drafts they
        proposed (NaN past each row's k). Only asked when `reads_confidence`; the default keeps them all.
        The engine also gives `ran` [n] (drafts each row of the step ran), `drafted` [m] (drafts each chain got)
        and `sampled` [m] (chains drawn from q, verified by rejection sampling): a sampled draft's confidence is
        q at its own draw, so it must not decide whether that draft is kept (kept only where q favours it, the
        draft is no longer drawn from the q it is verified with); such chains keep what they drafted."""
        return np.sum(~np.isnan(confidence), axis=1)

    def observe(self, view: StepView, decision: Decision, committed: np.ndarray,
                confidence: np.ndarray | None = None) -> None:
        """Called after each step with the drafts that ran (`decision`), the tokens each sequence committed and,
        where the caller has them, the confidences [n, K] of those drafts."""

    # The engine's hooks (no-ops for policies that need none).

    def clear(self, rows) -> None:
        """New sequences take these rows (engine slots)."""

    def keep_drafting(self, proposer: int, rows: np.ndarray):
        """An in-step stop for proposer index `proposer` drafting for these rows (a `ProposerInput.keep_drafting`
        callback), or None."""
        return None

    def chain_depth(self, depth: int) -> None:
        """The longest chain a confidence-reporting proposer drafted in this step."""

    def observe_step(self, record) -> None:
        """The engine's measured times of the step just run (`specscope.engine.timing.StepRecord`)."""
