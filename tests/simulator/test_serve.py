"""Serve mode: hand-computed continuous batching, the schedule, and the step loop agreeing with the fast path."""

import dataclasses

import numpy as np
import pytest

from specscope.policy.fixed import Oracle
from specscope.policy.base import StepView
from specscope.policy.registry import make_policy
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.serve import admission_steps, serve_replay
from specscope.simulator.serve_loop import serve_loop
from specscope.simulator.grid import SERVE, run_grid
from specscope.simulator.synthetic import synthetic_trace
from specscope.simulator.trajectory import run_trajectory


def one(trace, proposers, policy, b, costs, p=None, seed=42):
    return run_grid([trace], [proposers], [policy], [b], costs, mode=SERVE, seed=seed, ngram_match_override=p)[0]


@pytest.fixture
def two_requests(make_trace):
    # A: P = 10, G = 4; B: P = 5, G = 2. Under fixed-1, A steps at pos 1 (commits 1) and pos 2 (commits 2);
    # B steps once at pos 1.
    return make_trace([(10, {"eagle": [1, 2, 1, 1]}), (5, {"eagle": [1, 1]})])


def test_hand_computed_two_slots(two_requests, toy_costs):
    # B = 2. Step 0 prefills both: T(15, 0) = 2.5, + 0.5.
    # Step 1: A and B decode, 2 input tokens each, KV = 11 + 6: T(4, 17) = 1.57; eagle drafts once for
    #   the batch: 0.2 + 0.05 x 4 + 0.001 x 17 = 0.417; + 0.5 -> 2.487. B is done at 5.487.
    # Step 2: A alone at KV 12: T(2, 12) = 1.32, draft 0.2 + 0.1 + 0.012 = 0.312, + 0.5 -> 2.132.
    # Plain: 3.0, then T(2, 17) + 0.5 = 1.87, T(1, 12) + 0.5 = 1.72, T(1, 13) + 0.5 = 1.73.
    row = one(two_requests, ("eagle",), "fixed-1", 2, toy_costs)
    assert row["sd_time_s"] == pytest.approx(3.0 + 2.487 + 2.132, abs=1e-12)
    assert row["sd_mean_latency_s"] == pytest.approx((7.619 + 5.487) / 2, abs=1e-12)
    assert row["ar_time_s"] == pytest.approx(3.0 + 1.87 + 1.72 + 1.73, abs=1e-12)
    assert row["sd_throughput"] == pytest.approx(6 / 7.619)
    assert row["speedup"] == pytest.approx(8.32 / 7.619)
    assert row["verify_share"] == pytest.approx((2.5 + 1.57 + 1.32) / 7.619)
    assert row["draft_share"] == pytest.approx((0.417 + 0.312) / 7.619)


def test_hand_computed_one_slot(two_requests, toy_costs):
    # B = 1: A runs alone (prefill T(10, 0) + 0.5 = 2.5; T(2, 11) + 0.311 + 0.5 = 2.121; 2.132), then B is
    # admitted (T(5, 0) + 0.5 = 2.0) and decodes once (T(2, 6) + 0.306 + 0.5 = 2.066).
    row = one(two_requests, ("eagle",), "fixed-1", 1, toy_costs)
    assert row["sd_time_s"] == pytest.approx(2.5 + 2.121 + 2.132 + 2.0 + 2.066, abs=1e-12)
    assert row["sd_mean_latency_s"] == pytest.approx((6.753 + 10.819) / 2, abs=1e-12)


def test_combine_charges_every_proposer_that_ran(make_trace, toy_costs):
    # Two requests decode together at pos 1: A's n-gram accepts more (acc 3 vs 1), B's EAGLE does (2 vs 1).
    # Oracle combine: A proposes 2 from n-gram, B 1 from EAGLE; N = 3 + 2, KV = (4 + 1) + (6 + 1) = 12:
    # T = 1 + 0.5 + 0.12 = 1.62; n-gram 0.1 x 1.62 = 0.162; EAGLE 0.2 + 0.05 x 2 + 0.001 x 12 = 0.312.
    trace = make_trace([(4, {"ngram": [3, 1, 1, 1], "eagle": [1, 1, 1, 1]}),
                        (6, {"ngram": [1, 1, 1], "eagle": [2, 1, 1]})])
    rt = ReplayTrace.from_trace(trace, ("ngram", "eagle"))
    policy = Oracle(("ngram", "eagle"))
    match = np.ones(2)
    traj = run_trajectory(rt, policy, match)
    result = serve_replay(rt, traj, policy, toy_costs, 2, match, np.zeros(len(rt.acc)))
    assert result.draft_s == pytest.approx(0.162 + 0.312, abs=1e-12)


def test_admission_is_fifo_into_the_earliest_free_slot():
    # request r admitted at a decodes at a+1 .. a+steps and frees its slot for a+steps+1
    assert admission_steps(np.array([3, 1, 0, 2]), 2).tolist() == [0, 0, 2, 3]
    assert admission_steps(np.array([3, 1, 0, 2]), 1).tolist() == [0, 4, 6, 7]
    assert admission_steps(np.array([5, 5]), 8).tolist() == [0, 0]


class BatchAwareFixed:
    """fixed-2 that declares itself batch-aware, to send serve mode through the step loop."""

    batch_aware = True
    name = "aware-fixed-2"
    speculates = True

    def __init__(self, proposers):
        self.proposers = proposers
        self.seen = []

    def reset(self, num_requests):
        pass

    def decide(self, view: StepView):
        self.seen.append((view.batch_size, view.batch_kv))
        return make_policy("fixed-2", self.proposers[:1]).decide(view)

    def observe(self, view, decision, committed):
        pass


@pytest.mark.parametrize("b", [1, 3, 16, 64])
def test_step_loop_equals_fast_path(toy_costs, b):
    trace = synthetic_trace(30, seed=9, prompt_range=(3, 40), output_range=(1, 50))
    costs = dataclasses.replace(toy_costs, switching=0.01)
    for proposers, names in [(("eagle",), ["fixed-0", "fixed-3", "oracle"]), (("ngram",), ["fixed-2", "oracle"]),
                             (("ngram", "eagle"), ["oracle"])]:
        rt = ReplayTrace.from_trace(trace, proposers)
        match = np.array([0.4 if p == "ngram" else 1.0 for p in proposers])
        miss_u = np.random.default_rng(1).random(len(rt.acc))
        for name in names:
            policy = make_policy(name, proposers)
            fast = serve_replay(rt, run_trajectory(rt, policy, match), policy, costs, b, match, miss_u)
            loop = serve_loop(rt, policy, costs, b, match, miss_u)
            for field in dataclasses.fields(fast):
                assert getattr(loop, field.name) == pytest.approx(getattr(fast, field.name), rel=1e-9), field.name


@pytest.mark.parametrize("b", [1, 3, 16])
def test_a_drafter_takes_in_each_requests_context_once_at_its_first_drafting_step(toy_costs, b):
    from specscope.costs.surface import ChainCost

    trace = synthetic_trace(12, seed=4, prompt_range=(3, 40), output_range=(2, 30))
    chain = ChainCost(knots=(1.0, 16.0), seconds=(0.01, 0.05), c_kv=0.0, c_step=0.001, c_row=0.0)
    caught = ChainCost(**{**chain.as_dict(), "c_catch_up": 0.002})
    rt = ReplayTrace.from_trace(trace, ("eagle",))
    match, miss_u = np.ones(1), np.random.default_rng(1).random(len(rt.acc))
    policy = make_policy("fixed-3", ("eagle",))
    traj = run_trajectory(rt, policy, match)
    runs = {}
    for name, form in (("plain", chain), ("caught", caught)):
        costs = dataclasses.replace(toy_costs, drafts={"eagle": form})
        runs[name] = (serve_replay(rt, traj, policy, costs, b, match, miss_u), serve_loop(rt, policy, costs, b, match,
                                                                                           miss_u))
    fast, loop = runs["caught"]
    assert loop.draft_s == pytest.approx(fast.draft_s, rel=1e-12) and loop.time_s == pytest.approx(fast.time_s)
    # the oracle drafts only where it will be accepted: a request's first drafting step may come late, the catch-up
    # then covering what it generated by then; both paths charge it there
    oracle = make_policy("oracle", ("eagle",))
    costs = dataclasses.replace(toy_costs, drafts={"eagle": caught})
    late = serve_replay(rt, run_trajectory(rt, oracle, match), oracle, costs, b, match, miss_u)
    assert serve_loop(rt, oracle, costs, b, match, miss_u).draft_s == pytest.approx(late.draft_s, rel=1e-12)
    # every request drafts from its first decode step (position 1): its prompt and output token 0, once
    first = rt.prompt_len[traj.steps > 0] + 1
    assert fast.draft_s - runs["plain"][0].draft_s == pytest.approx(0.002 * first.sum(), rel=1e-9)


@pytest.mark.parametrize("b", [1, 3, 16])
def test_an_online_policy_is_charged_its_own_time_for_every_step_with_decoding_sequences(toy_costs, b):
    class OnlineFixed(type(make_policy("fixed-2", ("eagle",)))):
        online = True

    trace = synthetic_trace(10, seed=3, prompt_range=(3, 30), output_range=(2, 25))
    rt = ReplayTrace.from_trace(trace, ("eagle",))
    match, miss_u = np.ones(1), np.random.default_rng(1).random(len(rt.acc))
    costs = dataclasses.replace(toy_costs, decision=0.003, decision_per_sequence=0.001, decision_drafting=0.002)
    plain, online = make_policy("fixed-2", ("eagle",)), OnlineFixed(("eagle",), 2)
    traj = run_trajectory(rt, plain, match)
    base = serve_replay(rt, traj, plain, costs, b, match, miss_u)
    fast = serve_replay(rt, traj, online, costs, b, match, miss_u)
    loop = serve_loop(rt, online, costs, b, match, miss_u)
    assert loop.time_s == pytest.approx(fast.time_s, rel=1e-12) and loop.overhead_s == pytest.approx(fast.overhead_s)
    admit = admission_steps(traj.steps, b)
    step = admit[traj.request] + 1 + (np.arange(len(traj.request)) - traj.start[traj.request])
    decoding, drafting = np.bincount(step), np.bincount(step[traj.k > 0], minlength=step.max() + 1) > 0
    charged = np.sum(np.where(decoding > 0, 0.003 + 0.001 * decoding + 0.002 * drafting, 0.0))
    assert fast.time_s - base.time_s == pytest.approx(charged, rel=1e-9) and charged > 0
    assert costs.decision_seconds(0, True) == 0.0 and costs.decision_seconds(4, True) == pytest.approx(0.009)


def test_batch_aware_policy_sees_the_batch(toy_costs):
    trace = synthetic_trace(5, seed=1, prompt_range=(3, 10), output_range=(5, 10))
    rt = ReplayTrace.from_trace(trace, ("eagle",))
    policy = BatchAwareFixed(("eagle",))
    loop = serve_loop(rt, policy, toy_costs, 2, np.ones(1), np.zeros(len(rt.acc)))
    fixed = make_policy("fixed-2", ("eagle",))
    fast = serve_replay(rt, run_trajectory(rt, fixed, np.ones(1)), fixed, toy_costs, 2, np.ones(1),
                        np.zeros(len(rt.acc)))
    assert loop.time_s == pytest.approx(fast.time_s, rel=1e-12)
    assert all(size == 2 and kv is not None and (kv > 0).all() for size, kv in policy.seen)


def test_fixed_zero_is_exactly_one_and_oracle_beats_fixed_k(toy_costs):
    from specscope.costs.presets import load_cost_model

    trace = synthetic_trace(16, seed=4, prompt_range=(20, 200), output_range=(1, 150))
    sizes = [1, 4, 16, 64]
    for costs in (toy_costs, load_cost_model("llama3.1-8b-h100")):
        rows = run_grid([trace], [("eagle",), ("ngram",)], ["fixed-0", "fixed-1", "fixed-3", "fixed-5", "oracle"],
                         sizes, costs, mode=SERVE, ngram_match_override=0.6)
        speed = {(r["proposers"], r["policy"], r["batch_size"]): r for r in rows}
        for b in sizes:
            for prop in ("eagle", "ngram"):
                assert speed[(prop, "fixed-0", b)]["speedup"] == 1.0
                assert speed[(prop, "fixed-0", b)]["draft_share"] == 0.0
                for k in (1, 3, 5):
                    assert speed[(prop, "oracle", b)]["speedup"] >= speed[(prop, f"fixed-{k}", b)]["speedup"]
