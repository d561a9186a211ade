"""Serve mode never fills a batch of B from fewer than B requests silently: it resamples, and says so."""

import numpy as np
import pytest

from specscope.errors import SpecscopeError
from specscope.simulator.grid import run_grid
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.resample import default_num_requests, resample, serve_requests


@pytest.fixture
def four(make_trace):
    rng = np.random.default_rng(0)
    return make_trace([(20 + 5 * i, {"eagle": list(rng.integers(1, 5, size=30 + 7 * i))}) for i in range(4)])


def test_a_trace_of_4_requests_at_batch_64_rests_on_4_and_differs_from_batch_4(four, toy_costs):
    rows = run_grid([four], [("eagle",)], ["fixed-2", "oracle"], [4, 64], toy_costs)
    by = {(r["policy"], r["batch_size"]): r for r in rows}
    for policy in ("fixed-2", "oracle"):
        assert by[(policy, 4)]["requests"] == by[(policy, 4)]["distinct_requests"] == 4
        assert by[(policy, 64)]["distinct_requests"] == 4
        assert by[(policy, 64)]["requests"] == default_num_requests(64, 4) == 256
        assert by[(policy, 64)]["speedup"] != by[(policy, 4)]["speedup"]
    again = run_grid([four], [("eagle",)], ["fixed-2", "oracle"], [4, 64], toy_costs)
    assert [r["speedup"] for r in again] == [r["speedup"] for r in rows]  # seeded


def test_no_resampling_keeps_the_old_silent_copy_and_paper_mode_never_resamples(four, toy_costs):
    off = run_grid([four], [("eagle",)], ["oracle"], [4, 64], toy_costs, num_requests=0)
    assert off[0]["speedup"] == off[1]["speedup"] and off[1]["requests"] == 4  # what resampling replaces
    paper = run_grid([four], [("eagle",)], ["oracle"], [64], toy_costs, mode="paper")
    assert paper[0]["requests"] == paper[0]["distinct_requests"] == 4


def test_resampled_requests_keep_every_distinct_request_and_their_rows(four):
    rt = ReplayTrace.from_trace(four, ("eagle",))
    sampled, origin = resample(rt, 20, seed=[1, 2])
    assert sampled.num_requests == 20 and set(np.unique(sampled.prompt_len)) == set(rt.prompt_len)
    assert np.array_equal(sampled.acc, rt.acc[origin]) and len(origin) == int(sampled.gen_len.sum())
    for r in range(sampled.num_requests):  # each drawn request carries its own acc_len run
        start = sampled.offset[r]
        source = int(np.flatnonzero(rt.prompt_len == sampled.prompt_len[r])[0])
        assert np.array_equal(sampled.acc[start:start + sampled.gen_len[r]],
                              rt.acc[rt.offset[source]:rt.offset[source] + rt.gen_len[source]])


def test_how_many_requests_a_batch_size_is_simulated_with():
    assert serve_requests(4, 10, None) is None  # enough distinct requests: the trace as it is
    assert serve_requests(16, 10, None) == 64
    assert serve_requests(16, 10, 0) is None
    assert serve_requests(16, 10, 100) == 100
    with pytest.raises(SpecscopeError, match="smaller than batch size 16"):
        serve_requests(16, 10, 8)
