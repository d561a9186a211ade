"""The policy registry: policy names (`fixed-3`, `oracle`, `adaptive`, ...) to policies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from specscope.errors import SpecscopeError
from specscope.policy.adaptive import Adaptive
from specscope.policy.base import Policy
from specscope.policy.fixed import FixedK, Oracle, TreeVerify
from specscope.tree_spec import TREE_KEY


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
        "fixed-K (K >= 0 drafts per step; one chain proposer)",
        lambda props, m, costs: FixedK(props, int(m.group(1))),
        lambda props, m: int(m.group(1)) == 0 or (len(props) == 1 and not _trees(props)),
    ),
    "tree": PolicySpec(
        r"tree",
        "tree (verify a tree proposer's whole tree every step; one <proposer>@tree:<shape>)",
        lambda props, m, costs: TreeVerify(props),
        lambda props, m: len(props) == 1 and _trees(props) == 1,
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
        lambda props, m: len(props) == 1 and not _trees(props),
        needs_costs=True,
    ),
    "adaptive-combine": PolicySpec(
        r"adaptive-combine",
        "adaptive-combine (proposer and k per request and step; two or more proposers)",
        lambda props, m, costs: _adaptive(props, costs, "adaptive-combine"),
        lambda props, m: len(props) >= 2 and not _trees(props),
        needs_costs=True,
    ),
}


def _trees(proposers) -> int:
    """How many of the proposers are tree proposers (`<proposer>@tree:<shape>`)."""
    return sum(TREE_KEY in p for p in proposers)


def _adaptive(proposers, costs, name) -> Policy:
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
