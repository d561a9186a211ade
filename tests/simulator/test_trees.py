"""Tree proposers (`<proposer>@tree:<shape>`) in the simulator: the `tree` policy verifies the whole tree every step,
drafting is priced by the tree's drafting work, and the oracle verifies only the accepted path."""

import numpy as np
import pytest

from specscope.errors import SpecscopeError
from specscope.policy.registry import make_policy
from specscope.simulator.grid import PAPER, SERVE, parse_proposer_set, plan, run_grid
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.serve import serve_replay
from specscope.simulator.serve_loop import serve_loop
from specscope.simulator.trajectory import run_trajectory

TREE = "eagle@tree:3x2"  # 6 draft nodes, depth 3: a step commits at most 3 tokens; drafting work 1 + 1 + 2 = 4


def one(trace, proposers, policy, b, costs, mode=SERVE):
    return run_grid([trace], [proposers], [policy], [b], costs, mode=mode, seed=42)[0]


@pytest.fixture
def tree_trace(make_trace):
    # P = 10, G = 4: after the prefill, one tree step (reading acc_len[0], `ReplayTrace.rows`) accepts 2 drafts + the
    # bonus and finishes the request.
    return make_trace([(10, {TREE: [3, 1, 1, 1], "eagle": [3, 1, 1, 1]})])


def test_hand_computed_tree_step(tree_trace, toy_costs):
    # Prefill: T(10, 0) + 0.5 = 2.5. The tree step verifies the root + 6 nodes at KV 11: T(7, 11) = 1.81; drafting
    # 4 tokens' work: 0.2 + 0.05 x 4 + 0.001 x 11 = 0.411; + 0.5. It commits 3 tokens: the request is done.
    row = one(tree_trace, (TREE,), "tree", 1, toy_costs)
    assert row["sd_time_s"] == pytest.approx(2.5 + 1.81 + 0.411 + 0.5, abs=1e-12)


def test_oracle_over_a_tree_verifies_the_path_and_pays_the_tree_drafting(tree_trace, toy_costs):
    # The path: the root + 2 drafts, T(3, 11) = 1.41; drafting as for the whole tree, 0.411.
    row = one(tree_trace, (TREE,), "oracle", 1, toy_costs)
    assert row["sd_time_s"] == pytest.approx(2.5 + 1.41 + 0.411 + 0.5, abs=1e-12)


def test_a_chain_of_as_many_drafts_pays_more_drafting(tree_trace, toy_costs):
    # fixed-6 over the chain trace with the same acc_len: T(7, 11) and drafting 7 tokens: 0.2 + 0.35 + 0.011.
    row = one(tree_trace, ("eagle",), "fixed-6", 1, toy_costs)
    assert row["sd_time_s"] == pytest.approx(2.5 + 1.81 + 0.561 + 0.5, abs=1e-12)


@pytest.mark.parametrize("b", [1, 2, 3])
def test_step_loop_equals_fast_path_for_trees(make_trace, toy_costs, b):
    rng = np.random.default_rng(0)
    requests = [(int(rng.integers(3, 30)), {TREE: [1] + rng.integers(1, 4, size=int(g) - 1).tolist()})
                for g in rng.integers(2, 25, size=5)]
    rt = ReplayTrace.from_trace(make_trace(requests), (TREE,))
    match, miss_u = np.array([1.0]), np.random.default_rng(1).random(len(rt.acc))
    for name in ("tree", "oracle"):
        policy = make_policy(name, (TREE,))
        fast = serve_replay(rt, run_trajectory(rt, policy, match), policy, toy_costs, b, match, miss_u)
        loop = serve_loop(rt, policy, toy_costs, b, match, miss_u)
        assert loop.time_s == pytest.approx(fast.time_s, rel=1e-9), name


def test_paper_mode_prices_trees_too(tree_trace, toy_costs):
    tree = one(tree_trace, (TREE,), "tree", 1, toy_costs, mode=PAPER)
    chain = one(tree_trace, ("eagle",), "fixed-6", 1, toy_costs, mode=PAPER)
    assert tree["sd_time_s"] < chain["sd_time_s"]  # same verification, less drafting


def test_policies_fit_tree_and_chain_proposers():
    pairs, skipped = plan([(TREE,), ("eagle",), ("eagle", TREE)], ["fixed-3", "tree", "oracle"])
    assert set(pairs) == {((TREE,), "tree"), ((TREE,), "oracle"), (("eagle",), "fixed-3"), (("eagle",), "oracle"),
                          (("eagle", TREE), "oracle")}
    assert parse_proposer_set("eagle3@tree:6") == ("eagle3@tree:3x2",)
    with pytest.raises(SpecscopeError):
        parse_proposer_set("eagle3@tree:7")


def test_default_proposer_sets_combine_only_the_chains(make_trace):
    from specscope.study.simulate import default_proposer_sets

    trace = make_trace([(5, {"ngram": [1, 1], "eagle": [2, 1], TREE: [3, 1]})])
    assert default_proposer_sets([trace]) == [("ngram",), ("eagle",), (TREE,), ("ngram", "eagle")]
