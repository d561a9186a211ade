"""Traces from a server's per-step arrays: positions, censoring, the header's censored_at, validation."""

import json

import pytest

from specscope.errors import SpecscopeError
from specscope.formats.trace import RequestTrace, Trace, acc_len_from_steps, read_trace, write_trace


def test_steps_become_positions_with_the_rest_of_each_draft():
    # output of 8 tokens: prefill's token, then steps at positions 1 (1 of 3 accepted), 3 (3 of 3), 7 (0 of 3)
    acc, censored = acc_len_from_steps(8, [3, 3, 3], [1, 3, 0])
    assert acc.tolist() == [1, 2, 1, 4, 3, 2, 1, 1]
    assert censored.tolist() == [3, 4, 5, 6]  # the step that accepted all 3: only a lower bound


def test_a_step_without_drafts_is_exact_and_short_drafts_fully_accepted_are_censored():
    acc, censored = acc_len_from_steps(6, [0, 2, 3], [0, 2, 0])  # steps at 1, 2 (2 of 2), 5
    assert acc.tolist() == [1, 1, 3, 2, 1, 1] and censored.tolist() == [2, 3, 4]


@pytest.mark.parametrize("num_output,proposed,accepted", [
    (9, [3, 3, 3], [1, 3, 0]),  # the steps account for 8 tokens, not 9 (a server that leaves steps out)
    (5, [3, 3], [3, 3]),  # commits past the output
    (4, [3], [1, 1]),  # arrays of different lengths
])
def test_steps_that_do_not_account_for_the_output_give_none(num_output, proposed, accepted):
    assert acc_len_from_steps(num_output, proposed, accepted) is None


def test_censored_positions_round_trip(tmp_path):
    acc, censored = acc_len_from_steps(8, [3, 3, 3], [1, 3, 0])
    trace = Trace([RequestTrace("a", [1, 2], list(range(8)), {"ngram": acc}, censored={"ngram": censored})],
                  ["ngram"], k_max=3, extra={"censored_at": 4})
    path = tmp_path / "t.jsonl"
    write_trace(path, trace)
    back = read_trace(path)
    assert back.extra["censored_at"] == 4
    assert back.requests[0].censored["ngram"].tolist() == [3, 4, 5, 6]
    assert back.requests[0].acc_len["ngram"].tolist() == acc.tolist()


def test_without_lists_the_values_at_censored_at_are_censored(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [{"specscope_trace": 1, "proposers": ["eagle"], "k_max": 3, "censored_at": 4},
             {"id": "a", "prompt_token_ids": [1], "output_token_ids": [5, 6, 7, 8, 9, 10],
              "acc_len": {"eagle": [1, 4, 3, 2, 1, 1]}}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert read_trace(path).requests[0].censored["eagle"].tolist() == [1]
    lines[0].pop("censored_at")
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert read_trace(path).requests[0].censored is None


@pytest.mark.parametrize("censored,message", [
    ({"eagle": [3, 2]}, "increasing output positions"),
    ({"eagle": [0, 9]}, "increasing output positions"),
    ({"draft": [1]}, "has no acc_len"),
    ([1, 2], "must be an object"),
])
def test_bad_censored_lists_name_the_field(tmp_path, censored, message):
    path = tmp_path / "t.jsonl"
    lines = [{"specscope_trace": 1, "proposers": ["eagle"], "k_max": 3, "censored_at": 4},
             {"id": "a", "prompt_token_ids": [1], "output_token_ids": [5, 6, 7],
              "acc_len": {"eagle": [1, 2, 1]}, "censored": censored}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(SpecscopeError, match=message):
        read_trace(path)
    lines[1].pop("censored")
    lines[0]["censored_at"] = 0
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(SpecscopeError, match="censored_at"):
        read_trace(path)
