"""Seeded subsets repeat exactly; prompts too long for the context are skipped and counted."""

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads.sampling import sample_indices, select_fitting


def test_same_seed_same_subset_in_source_order():
    first = sample_indices(100, 10, seed=7)
    assert first == sample_indices(100, 10, seed=7)
    assert first == sorted(first) and len(set(first)) == 10
    assert all(0 <= i < 100 for i in first)


def test_different_seeds_differ():
    assert sample_indices(100, 10, seed=1) != sample_indices(100, 10, seed=2)


def test_all_when_none_or_exactly_all():
    assert sample_indices(5, None) == [0, 1, 2, 3, 4]
    assert sample_indices(5, 5, seed=3) == [0, 1, 2, 3, 4]


def test_more_than_there_are_is_one_line_naming_how_many():
    with pytest.raises(SpecscopeError, match=r"^--num-prompts 50: only 5 prompt\(s\) are available; pass at most 5"):
        sample_indices(5, 50, seed=3)


def test_num_prompts_must_be_positive():
    with pytest.raises(SpecscopeError, match="at least 1"):
        sample_indices(5, 0)


def test_select_fitting_keeps_room_for_new_tokens():
    ids = [[1] * 3, [1] * 10, [1] * 9, []]
    assert select_fitting(ids, context_len=10) == ([0, 2], 2)
    assert select_fitting(ids, context_len=10, min_new_tokens=7) == ([0], 3)
    assert select_fitting([], context_len=10) == ([], 0)
