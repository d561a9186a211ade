"""Shared fixtures for the simulator tests: a toy cost model with round numbers and a trace builder."""

import numpy as np
import pytest

from specscope.costs.model import CostModel, LinearCost, VerifyFraction
from specscope.formats.trace import RequestTrace, Trace


@pytest.fixture
def toy_costs() -> CostModel:
    """T(N, KV) = 1 + 0.1 N + 0.01 KV; overhead 0.5; eagle 0.2 + 0.05 tokens + 0.001 KV; ngram 0.1 x T."""
    return CostModel(
        name="toy",
        target=LinearCost(1.0, 0.1, 0.01),
        overhead=0.5,
        drafts={"eagle": LinearCost(0.2, 0.05, 0.001), "ngram": VerifyFraction(0.1)},
    )


@pytest.fixture
def make_trace():
    """make_trace([(prompt_len, {"eagle": [...], ...}), ...]) -> Trace with those acc_len lists."""

    def build(requests, workload=None) -> Trace:
        proposers = list(requests[0][1])
        reqs = []
        for i, (prompt_len, acc) in enumerate(requests):
            gen = max(len(v) for v in acc.values())
            reqs.append(RequestTrace(str(i), list(range(prompt_len)), list(range(gen)),
                                     {p: np.array(v, dtype=np.int64) for p, v in acc.items()}, workload))
        return Trace(requests=reqs, proposers=proposers, workload=workload, k_max=20)

    return build
