"""The simulator caps the batch at what fits in the cost model's memory, and says so."""

from dataclasses import replace

import pytest

from specscope.errors import SpecscopeError
from specscope.simulator.grid import run_grid
from specscope.simulator.memory import batch_cap, fit_batch_sizes, longest_request


def _trace(make_trace):
    # prompts of 10 and 20 tokens, 4 and 6 outputs: the longest request holds 20 + 6 + 1 = 27 KV tokens
    return make_trace([(10, {"eagle": [2, 1, 3, 1]}), (20, {"eagle": [1, 2, 1, 1, 2, 1]}), (5, {"eagle": [1, 1]})])


def test_no_memory_limit_leaves_the_batch_sizes_alone(make_trace, toy_costs):
    trace = _trace(make_trace)
    fit = fit_batch_sizes(trace, [8, 1, 64], toy_costs)
    assert (fit.sizes, fit.cap, fit.capped) == ([8, 1, 64], None, [])
    assert fit.note(trace, toy_costs) == ""


def test_batch_sizes_above_the_cap_run_once_at_the_cap(make_trace, toy_costs):
    trace = _trace(make_trace)
    costs = replace(toy_costs, max_kv_tokens=60)
    assert longest_request(trace) == 27 and batch_cap(trace, costs) == 2
    fit = fit_batch_sizes(trace, [1, 2, 4, 8], costs)
    assert (fit.sizes, fit.capped) == ([1, 2], [4, 8])
    assert "batch size(s) 4, 8 do not fit, simulated at 2 (the largest that fits)" in fit.note(trace, costs)
    rows = run_grid([trace], [("eagle",)], ["fixed-1"], [1, 2, 4, 8], costs)
    assert [r["batch_size"] for r in rows] == [1, 2]
    unlimited = run_grid([trace], [("eagle",)], ["fixed-1"], [1, 2], toy_costs)
    assert [r["speedup"] for r in rows] == [r["speedup"] for r in unlimited]  # the cap only removes sizes


def test_a_request_that_does_not_fit_alone_is_an_error(make_trace, toy_costs):
    with pytest.raises(SpecscopeError, match="the longest request needs 27 KV tokens but cost model 'toy' holds 20"):
        run_grid([_trace(make_trace)], [("eagle",)], ["fixed-1"], [1], replace(toy_costs, max_kv_tokens=20))
