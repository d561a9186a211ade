"""Policies: what fixed-K and oracle (single and combine) propose, and the policy registry."""

import numpy as np
import pytest

from specscope.errors import SpecscopeError
from specscope.policy.fixed import FixedK, Oracle
from specscope.policy.base import StepView
from specscope.policy.registry import make_policy, plain_decoding, supports


def view(acc):
    acc = np.array(acc)
    n = len(acc)
    return StepView(np.arange(n), np.ones(n, dtype=np.int64), acc)


def test_fixed_k_proposes_k_from_its_proposer():
    p = make_policy("fixed-3", ("eagle",))
    out = p.decide(view([[1], [5], [2]]))
    assert out.k.tolist() == [3, 3, 3] and out.proposer.tolist() == [0, 0, 0]
    assert p.speculates and not plain_decoding(("eagle",)).speculates
    assert isinstance(make_policy("fixed-0", ("ngram", "eagle")), FixedK)


def test_oracle_proposes_exactly_what_is_accepted():
    out = Oracle(("eagle",)).decide(view([[1], [5], [2]]))
    assert out.k.tolist() == [0, 4, 1]


def test_oracle_combine_picks_the_larger_acc_len_first_on_ties():
    out = Oracle(("ngram", "eagle")).decide(view([[3, 1], [1, 4], [2, 2], [1, 1]]))
    assert out.k.tolist() == [2, 3, 1, 0]
    assert out.proposer.tolist() == [0, 1, 0, 0]


def test_registry_names_and_scope():
    assert supports("fixed-5", ("eagle",)) and not supports("fixed-5", ("ngram", "eagle"))
    assert supports("oracle", ("ngram", "eagle")) and supports("fixed-0", ("ngram", "eagle"))
    with pytest.raises(SpecscopeError, match=r"Unknown policy 'fixed-x'. Available: fixed-K .*; oracle"):
        make_policy("fixed-x", ("eagle",))
    with pytest.raises(SpecscopeError, match="does not apply to proposers ngram,eagle"):
        make_policy("fixed-2", ("ngram", "eagle"))
