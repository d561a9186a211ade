"""Trajectories: each request's decode steps (positions, drafts, tokens committed, possible misses)."""

import numpy as np
import pytest

from specscope.errors import SpecscopeError
from specscope.policy.base import Policy, Decision
from specscope.policy.registry import make_policy
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.trajectory import run_trajectory


def test_positions_and_commits_follow_the_trace(make_trace):
    # acc_len[pos - 1] at each step; fixed-2 commits min(acc, 3)
    trace = make_trace([(4, {"ngram": [1, 1, 5, 3, 2, 1, 1]}), (2, {"ngram": [1]})])
    rt = ReplayTrace.from_trace(trace, ("ngram",))
    traj = run_trajectory(rt, make_policy("fixed-2", ("ngram",)), np.array([0.5]))
    assert traj.steps.tolist() == [4, 0]  # G = 1 is done after prefill
    assert traj.position.tolist() == [1, 2, 3, 6]
    assert traj.committed.tolist() == [1, 1, 3, 1]
    assert traj.may_miss.tolist() == [True, True, False, True]
    assert traj.finishes.tolist() == [False, False, False, True]
    never = run_trajectory(rt, make_policy("fixed-2", ("ngram",)), np.array([1.0]))
    assert not never.may_miss.any()


def test_oracle_commits_the_whole_acc_len(make_trace):
    trace = make_trace([(4, {"eagle": [1, 4, 3, 2, 1, 2, 1]})])
    rt = ReplayTrace.from_trace(trace, ("eagle",))
    traj = run_trajectory(rt, make_policy("oracle", ("eagle",)), np.ones(1))
    assert traj.position.tolist() == [1, 2, 6]
    assert traj.k.tolist() == [0, 3, 1]
    assert traj.committed.tolist() == [1, 4, 2]


def test_combine_uses_the_shorter_list_and_flags_switches(make_trace):
    trace = make_trace([(3, {"ngram": [1, 2, 1, 1, 1, 1, 1], "eagle": [1, 1, 1, 2, 1, 1]})])
    rt = ReplayTrace.from_trace(trace, ("ngram", "eagle"))
    assert rt.gen_len.tolist() == [6]
    traj = run_trajectory(rt, make_policy("oracle", ("ngram", "eagle")), np.ones(2))
    assert traj.position.tolist() == [1, 2, 4]
    assert traj.proposer[traj.k > 0].tolist() == [0, 1]
    assert traj.switched.tolist() == [False, False, True]


class Broken(Policy):
    name = "broken"

    def decide(self, view):
        return Decision(-np.ones(len(view.request)), np.zeros(len(view.request)))


def test_a_bad_policy_is_reported(make_trace):
    rt = ReplayTrace.from_trace(make_trace([(3, {"eagle": [1, 1, 1]})]), ("eagle",))
    with pytest.raises(SpecscopeError, match="policy 'broken' proposed a negative k"):
        run_trajectory(rt, Broken(("eagle",)), np.ones(1))


class StepwiseFixed(Policy):
    """fixed-K through the lockstep loop (not memoryless), to compare the two trajectory paths."""

    def __init__(self, proposers, k):
        super().__init__(proposers)
        self.k = k

    def decide(self, view):
        n = len(view.request)
        return Decision(np.full(n, self.k), np.zeros(n, dtype=np.int64))


class StepwiseOracle(Policy):
    def decide(self, view):
        return make_policy("oracle", self.proposers).decide(view)


def test_memoryless_path_equals_the_lockstep_loop():
    from specscope.simulator.synthetic import synthetic_trace

    trace = synthetic_trace(20, seed=8, prompt_range=(3, 10), output_range=(1, 80))
    cases = [(("ngram",), make_policy("fixed-3", ("ngram",)), StepwiseFixed(("ngram",), 3)),
             (("eagle",), make_policy("fixed-0", ("eagle",)), StepwiseFixed(("eagle",), 0)),
             (("eagle",), make_policy("oracle", ("eagle",)), StepwiseOracle(("eagle",))),
             (("ngram", "eagle"), make_policy("oracle", ("ngram", "eagle")), StepwiseOracle(("ngram", "eagle")))]
    for proposers, fast_policy, loop_policy in cases:
        rt = ReplayTrace.from_trace(trace, proposers)
        match = np.array([0.5 if p == "ngram" else 1.0 for p in proposers])
        fast = run_trajectory(rt, fast_policy, match)
        loop = run_trajectory(rt, loop_policy, match)
        for name in fast.__dataclass_fields__:
            assert np.array_equal(getattr(fast, name), getattr(loop, name)), (proposers, name)
