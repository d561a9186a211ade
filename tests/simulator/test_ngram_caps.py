"""n-gram matches from a trace's own tokens: the drafts the n-gram can offer cap what a step proposes."""

import numpy as np
import pytest

from specscope.policy.guard import CounterfactualGuard, GuardParams
from specscope.policy.registry import make_policy
from specscope.simulator.replay_trace import ReplayTrace, ngram_caps, ngram_caps_known
from specscope.simulator.grid import run_grid
from specscope.simulator.trajectory import run_trajectory
from specscope.formats.trace import RequestTrace, Trace

PROMPT = [7, 1, 2, 3, 4, 5, 6]
OUTPUT = [1, 2, 3, 4, 9, 9, 9, 9, 9, 9]
# position i looks up PROMPT + OUTPUT[:i] with n = 3: [1 2 3] and [2 3 4] recur in the prompt (6 tokens
# follow them before the end), [9 9 9] recurs from i = 8 on (one 9 follows its previous occurrence)
CAPS = [0, 0, 0, 6, 6, 0, 0, 0, 1, 1]
NGRAM_ACC = [1, 1, 1, 5, 4, 1, 1, 1, 2, 1]


def trace(with_settings=True, n=1):
    extra = {"ngram_min": 3, "ngram_max": 3} if with_settings else {}
    requests = [RequestTrace(f"r{i}", PROMPT, OUTPUT, {"ngram": np.array(NGRAM_ACC), "eagle": np.full(10, 2)})
                for i in range(n)]
    return Trace(requests=requests, proposers=["ngram", "eagle"], k_max=20, extra=extra)


def test_caps_follow_the_ngram_lookup_over_the_tokens_so_far():
    rt = ReplayTrace.from_trace(trace(), ("ngram", "eagle"), ngram_caps(trace()))
    assert rt.draft_cap[:, 0].tolist() == CAPS
    assert (rt.draft_cap[:, 1] >= 20).all()  # other proposers: no cap
    assert ngram_caps_known(trace()) and not ngram_caps_known(trace(with_settings=False))
    assert ngram_caps(trace(with_settings=False)) is None
    assert ReplayTrace.from_trace(trace(), ("eagle",), ngram_caps(trace())).draft_cap is None


def test_fixed_k_proposes_only_what_the_ngram_found():
    rt = ReplayTrace.from_trace(trace(), ("ngram",), ngram_caps(trace()))
    traj = run_trajectory(rt, make_policy("fixed-4", ("ngram",), None), np.ones(1))
    caps = rt.draft_cap[rt.rows(traj.request, traj.position), 0]
    assert traj.k.tolist() == np.minimum(4, caps).tolist()
    assert 0 in traj.k.tolist() and not traj.may_miss.any()


@pytest.mark.parametrize("mode", ["serve", "paper"])
def test_the_trace_matches_replace_the_random_miss_model_unless_asked(toy_costs, mode):
    rows = run_grid([trace(n=3)], [("ngram",)], ["fixed-4"], [1, 2], toy_costs, mode=mode)
    assert all(r["ngram_match_prob"] is None for r in rows)
    asked = run_grid([trace(n=3)], [("ngram",)], ["fixed-4"], [1, 2], toy_costs, mode=mode, ngram_match_override=1.0)
    assert all(r["ngram_match_prob"] == 1.0 for r in asked)
    # with p = 1 every no-match position is priced as 4 rejected drafts: slower than the trace's own matches
    assert all(a["speedup"] < r["speedup"] for a, r in zip(asked, rows))


@pytest.mark.parametrize("mode", ["serve", "paper"])
@pytest.mark.parametrize("policy", ["adaptive", "adaptive-combine"])
@pytest.mark.parametrize("guarded", [True, False])
def test_adaptive_policies_never_propose_beyond_the_match(toy_costs, mode, policy, guarded):
    proposers = ("ngram",) if policy == "adaptive" else ("ngram", "eagle")
    rt = ReplayTrace.from_trace(trace(n=2), proposers, ngram_caps(trace(n=2)))
    seen = []
    chosen = make_policy(policy, proposers, toy_costs)
    if not guarded:  # the model's own decisions (the guard may follow a fixed k of the other proposer here)
        chosen.guard = CounterfactualGuard(len(proposers), GuardParams(ks=(), pair_ks=()))
    decide = chosen.decide

    def spy(view):
        out = decide(view)
        caps = rt.draft_cap[rt.rows(view.request, view.position), 0]
        seen.append((out.k[out.proposer == 0], caps[out.proposer == 0]))
        return out

    chosen.decide = spy
    run_trajectory(rt, chosen, np.ones(len(proposers)), batch_size=2 if mode == "paper" else None)
    if not guarded:
        assert any((k > 0).any() for k, _ in seen)  # it did draft where the n-gram matched
    assert all((k <= cap).all() for k, cap in seen)
