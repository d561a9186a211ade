"""requests.jsonl: the step counts a record may carry in three shapes, and the summary's totals from records."""

import pytest

from specscope.errors import SpecscopeError
from specscope.formats.requests import step_counts, totals


def test_step_counts_accepts_the_three_shapes():
    expected = ([3, 3], [1, 2])
    assert step_counts([{"proposed": 3, "accepted": 1}, {"proposed": 3, "accepted": 2}], "f", 1) == expected
    assert step_counts([[3, 1], [3, 2]], "f", 1) == expected
    assert step_counts({"proposed": [3, 3], "accepted": [1, 2]}, "f", 1) == expected
    with pytest.raises(SpecscopeError, match="f:4: 'steps'"):
        step_counts([{"proposed": 3}], "f", 4)


def test_totals_count_completed_requests_and_decode_steps():
    records = [
        {"id": "a", "output_token_ids": [1, 2, 3, 4], "steps": {"proposed": [3, 3], "accepted": [2, 0]}},
        {"id": "b", "output_token_ids": [], "error": "prompt too long"},
    ]
    t = totals(records, wall_seconds=2.0)
    assert t["num_requests"] == 2 and t["num_completed"] == 1 and t["num_errors"] == 1
    assert t["generated_tokens"] == 4 and t["throughput_tok_s"] == 2.0
    assert t["mean_acc_len"] == (2 + 2) / 2 and t["acceptance_rate"] == 2 / 6
