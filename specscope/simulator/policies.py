"""Proposal policies: at each step, how many draft tokens (k) to propose and from which proposer.

A policy is a small class with one job, `propose(view) -> Proposal`, vectorised over the sequences
of a step. The replays (paper, serve) call it and never look at which policy it is, so a new policy
(e.g. an adaptive one) is one class plus one entry in `POLICIES`.

What a policy may read (`StepView`):
- `request`, `position`: which sequences step now and how many output tokens each has committed;
- `acc_len` [n, P]: the acc_len a step here would achieve with each proposer. This is the trace's
  ground truth, i.e. the future: only oracle policies may read it;
- `batch_size`, `batch_kv`: the batch the step runs in (set only for policies with
  `batch_aware = True`; others get None, which lets the serve replay schedule requests without a
  step loop);
- `trace`: the replay trace, for per-position signals a policy may use (e.g. draft confidence);
- `replicated`: True in paper mode, where each row stands for `batch_size` identical copies of its
  request forming their own batch (`batch_kv` is then that row's batch KV).
A policy with `reads_confidence = True` may also stop a step's chain early: where the trace records
the chosen proposer's draft confidences, the replay hands it the confidences of the drafts it asked
for (`stop_drafting`; `ReplayTrace.drafted_confidence`) and proposes only the drafts it keeps, as a
draft model that stops drafting mid-step would. `observe` then gets the drafts that ran.
Stateful policies keep per-request state, reset by `reset(num_requests)` and updated by
`observe(view, proposal, committed)` after every step. A policy that decides from the view's row
alone (no state, no batch) says `memoryless = True`; the replay may then ask it about all positions
of all requests in one call.

Policies here:
- `fixed-K`  propose K drafts every step from the one proposer; K = 0 is plain decoding (no proposer runs);
- `oracle`   propose exactly acc_len - 1 drafts (nothing wasted): the upper bound for that proposer;
  with two or more proposers it is the oracle combine: per step the proposer with the larger
  acc_len wins (the first listed on a tie), proposing exactly its acc_len - 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from specscope.errors import SpecscopeError


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
class Proposal:
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

    def propose(self, view: StepView) -> Proposal:
        raise NotImplementedError

    def stop_drafting(self, view: StepView, index: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Drafts to keep [m] for the view's rows `index` [m], given the confidences [m, K] of the drafts they
        proposed (NaN past each row's k). Only asked when `reads_confidence`; the default keeps them all."""
        return np.sum(~np.isnan(confidence), axis=1)

    def observe(self, view: StepView, proposal: Proposal, committed: np.ndarray) -> None:
        """Called after each step with the drafts that ran (`proposal`) and the tokens each sequence committed."""


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

    def propose(self, view: StepView) -> Proposal:
        n = len(view.request)
        return Proposal(np.full(n, self.k, dtype=np.int64), np.zeros(n, dtype=np.int64))


class Oracle(Policy):
    """Propose exactly what will be accepted; over several proposers, the best one per step."""

    name = "oracle"
    memoryless = True

    def propose(self, view: StepView) -> Proposal:
        best = np.argmax(view.acc_len, axis=1)  # first proposer wins ties
        acc = view.acc_len[np.arange(len(best)), best]
        return Proposal(acc - 1, best)


@dataclass(frozen=True)
class PolicySpec:
    """A family of policy names: how to recognise, build and scope them."""

    pattern: str  # regular expression over the policy name
    usage: str  # how the name is written, for error messages
    build: Callable[[tuple[str, ...], re.Match, Any], Policy]  # (proposers, match, cost model or None)
    supports: Callable[[tuple[str, ...], re.Match], bool]  # proposer sets it applies to
    needs_costs: bool = False  # build needs the cost model


POLICIES: dict[str, PolicySpec] = {
    "fixed": PolicySpec(
        r"fixed-(\d+)",
        "fixed-K (K >= 0 drafts per step; one proposer)",
        lambda props, m, costs: FixedK(props, int(m.group(1))),
        lambda props, m: len(props) == 1 or int(m.group(1)) == 0,
    ),
    "oracle": PolicySpec(
        r"oracle",
        "oracle (with several proposers: oracle combine)",
        lambda props, m, costs: Oracle(props),
        lambda props, m: True,
    ),
    "adaptive": PolicySpec(
        r"adaptive",
        "adaptive (k per request and step from its acceptance history and the cost model; one proposer)",
        lambda props, m, costs: _adaptive(props, costs, "adaptive"),
        lambda props, m: len(props) == 1,
        needs_costs=True,
    ),
    "adaptive-combine": PolicySpec(
        r"adaptive-combine",
        "adaptive-combine (proposer and k per request and step; two or more proposers)",
        lambda props, m, costs: _adaptive(props, costs, "adaptive-combine"),
        lambda props, m: len(props) >= 2,
        needs_costs=True,
    ),
}


def _adaptive(proposers, costs, name) -> Policy:
    from specscope.simulator.adaptive import Adaptive  # it imports this module

    return Adaptive(proposers, costs, name)


def _match(name: str) -> tuple[PolicySpec, re.Match]:
    for spec in POLICIES.values():
        m = re.fullmatch(spec.pattern, name)
        if m:
            return spec, m
    usages = "; ".join(spec.usage for spec in POLICIES.values())
    raise SpecscopeError(f"Unknown policy '{name}'. Available: {usages}")


def scope(name: str) -> str:
    """How the policy family of `name` is written and which proposer sets it takes."""
    return _match(name)[0].usage


def check_policy_name(name: str) -> None:
    """Raise the registry error for a name no policy family recognises."""
    _match(name)


def supports(name: str, proposers) -> bool:
    """Whether policy `name` applies to this proposer set (fixed-K > 0 and adaptive need one proposer)."""
    spec, m = _match(name)
    return spec.supports(tuple(proposers), m)


def make_policy(name: str, proposers, costs=None) -> Policy:
    """Build policy `name` for a proposer set, e.g. make_policy('fixed-3', ('eagle',)); `costs`: a CostModel."""
    proposers = tuple(proposers)
    spec, m = _match(name)
    if spec.needs_costs and costs is None:
        raise SpecscopeError(f"policy '{name}' needs a cost model")
    if not spec.supports(proposers, m):
        raise SpecscopeError(
            f"policy '{name}' does not apply to proposers {','.join(proposers)}: {spec.usage}"
        )
    return spec.build(proposers, m, costs)


def plain_decoding(proposers) -> Policy:
    """The no-SD baseline: fixed-0 over the same proposer set (same requests, same G)."""
    return FixedK(tuple(proposers), 0)
