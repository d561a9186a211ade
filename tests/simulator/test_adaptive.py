"""Adaptive policies: no look-ahead, convergence on constant acceptance, k = 0 when drafts lose, gap_recovered."""

import numpy as np
import pytest

from specscope.policy.acceptance import AcceptanceEstimate
from specscope.policy.decision import choose_batch
from specscope.costs.model import CostModel, LinearCost, VerifyFraction
from specscope.policy.registry import make_policy, plain_decoding
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.serve_loop import serve_loop
from specscope.simulator.grid import add_gap_recovered, run_grid
from specscope.simulator.trajectory import run_trajectory

CHEAP = CostModel("cheap", LinearCost(1.0, 0.01, 0.0), 0.1,
                  {"eagle": LinearCost(0.05, 0.005, 0.0), "ngram": VerifyFraction(0.01)})


def random_trace(make_trace, seed=0, n=5, gen=60):
    rng = np.random.default_rng(seed)
    return make_trace([(10 + i, {"ngram": rng.integers(1, 8, gen).tolist(), "eagle": rng.integers(1, 5, gen).tolist()})
                       for i in range(n)])


class Recorder:
    """Wraps a policy; logs each round's (request, position, k, proposer) and the acc rows it was shown."""

    def __init__(self, policy):
        self.policy, self.rounds = policy, []
        for name in ("name", "proposers", "batch_aware", "memoryless", "speculates", "reference_pricing",
                     "reads_confidence"):
            setattr(self, name, getattr(policy, name))

    def reset(self, n):
        self.policy.reset(n)

    def decide(self, view):
        out = self.policy.decide(view)
        self.rounds.append((view.request.copy(), view.position.copy(), out.k.copy(), out.proposer.copy()))
        return out

    def stop_drafting(self, view, index, confidence):
        return self.policy.stop_drafting(view, index, confidence)

    def observe(self, view, decision, committed):
        self.policy.observe(view, decision, committed)


def replay(mode, rt, policy, costs):
    if mode == "paper":
        run_trajectory(rt, policy, np.ones(len(rt.proposers)), batch_size=4)
    else:
        serve_loop(rt, policy, costs, 3, np.ones(len(rt.proposers)), np.zeros(len(rt.acc)))


@pytest.mark.parametrize("mode", ["paper", "serve"])
@pytest.mark.parametrize("name,proposers", [("adaptive", ("ngram",)), ("adaptive-combine", ("ngram", "eagle"))])
def test_decisions_never_read_ahead(make_trace, mode, name, proposers):
    rt = ReplayTrace.from_trace(random_trace(make_trace), proposers)
    first = Recorder(make_policy(name, proposers, CHEAP))
    replay(mode, rt, first, CHEAP)
    cut = len(first.rounds) // 2
    seen = set()  # rows a step before the cut read (its outcome was observed)
    for req, pos, _, _ in first.rounds[:cut]:
        seen.update(rt.rows(req, pos).tolist())
    future = np.setdiff1d(np.arange(len(rt.acc)), list(seen))
    acc = rt.acc.copy()
    acc[future] = np.random.default_rng(1).integers(1, 21, acc[future].shape)
    perturbed = ReplayTrace(rt.name, rt.proposers, rt.prompt_len, rt.gen_len, rt.offset, acc, rt.source)
    second = Recorder(make_policy(name, proposers, CHEAP))
    replay(mode, perturbed, second, CHEAP)
    for a, b in zip(first.rounds[: cut + 1], second.rounds[: cut + 1]):  # up to and including the cut round
        for x, y in zip(a, b):
            assert x.tolist() == y.tolist()
    assert any(not np.array_equal(a[2], b[2]) for a, b in zip(first.rounds, second.rounds)) or \
        len(first.rounds) != len(second.rounds)  # the perturbation did matter later


def with_confidence(trace, seed=0):
    """The trace with random eagle draft confidences at every position."""
    rng = np.random.default_rng(seed)
    for req in trace.requests:
        req.draft_confidence = {"eagle": np.round(rng.uniform(0, 1, len(req.acc_len["eagle"])), 3).tolist()}
    return trace


@pytest.mark.parametrize("mode", ["paper", "serve"])
@pytest.mark.parametrize("name,proposers", [("adaptive", ("eagle",)), ("adaptive-combine", ("ngram", "eagle"))])
def test_decisions_never_read_ahead_with_confidences(make_trace, mode, name, proposers):
    """With draft confidences a step also sees those of the drafts it runs (rows r .. r + k - 1): perturbing
    everything no step before the cut read or drafted over leaves every decision up to the cut unchanged."""
    rt = ReplayTrace.from_trace(with_confidence(random_trace(make_trace)), proposers)
    assert rt.confident.tolist() == [p == "eagle" for p in proposers]
    first = Recorder(make_policy(name, proposers, CHEAP))
    replay(mode, rt, first, CHEAP)
    cut = len(first.rounds) // 2
    seen = set()
    for req, pos, k, _ in first.rounds[:cut]:
        for r, kk in zip(rt.rows(req, pos).tolist(), k.tolist()):
            seen.update(range(r, r + max(kk, 1)))
    future = np.setdiff1d(np.arange(len(rt.acc)), list(seen))
    rng = np.random.default_rng(1)
    acc, conf = rt.acc.copy(), rt.confidence.copy()
    acc[future] = rng.integers(1, 21, acc[future].shape)
    conf[future] = np.where(np.isnan(conf[future]), np.nan, rng.uniform(0, 1, conf[future].shape))
    perturbed = ReplayTrace(rt.name, rt.proposers, rt.prompt_len, rt.gen_len, rt.offset, acc, rt.source,
                            confidence=conf, confident=rt.confident)
    second = Recorder(make_policy(name, proposers, CHEAP))
    replay(mode, perturbed, second, CHEAP)
    for a, b in zip(first.rounds[: cut + 1], second.rounds[: cut + 1]):
        for x, y in zip(a, b):
            assert x.tolist() == y.tolist()


def confident_runs(make_trace, seed=0, n=4, gen=400):
    """Drafts accepted exactly where the proposer is confident (0.995 vs 0.1): acc_len is the run of confident
    positions from each one."""
    rng = np.random.default_rng(seed)
    requests, confidences = [], []
    for _ in range(n):
        sure = rng.uniform(0, 1, gen) < 0.6
        run = np.zeros(gen + 1, dtype=np.int64)
        for j in range(gen - 1, -1, -1):
            run[j] = run[j + 1] + 1 if sure[j] else 0
        acc = np.minimum(np.minimum(1 + run[:gen], 21), gen - np.arange(gen))
        acc[0] = 1
        requests.append((20, {"eagle": acc.tolist()}))
        confidences.append(np.where(sure, 0.995, 0.1).tolist())
    trace = make_trace(requests)
    for req, conf in zip(trace.requests, confidences):
        req.draft_confidence = {"eagle": conf}
    return trace


def test_confidence_stop_cuts_chains_at_the_first_unsure_draft(make_trace):
    trace = confident_runs(make_trace)
    costs = CostModel("steep", LinearCost(1.0, 0.3, 0.0), 0.0, {"eagle": LinearCost(0.01, 0.01, 0.0)})
    rt = ReplayTrace.from_trace(trace, ("eagle",))
    policy = make_policy("adaptive", ("eagle",), costs)
    traj = run_trajectory(rt, policy, np.ones(1), batch_size=1)
    late = (traj.position > 100) & (traj.k > 0)
    wasted = traj.k[late] - (traj.committed[late] - 1)
    assert np.mean(wasted <= 1) > 0.95  # a chain runs to its first unsure draft and stops there
    table = policy.calibration.table()[0]  # [depth, bin]
    assert (table[:, -1] > 0.9).all() and (table[:, 0] < 0.2).all()  # learnt: confident drafts are accepted
    rows = run_grid([trace], [("eagle",)], ["adaptive"] + [f"fixed-{k}" for k in range(1, 9)], [1], costs,
                     mode="paper")
    speed = {r["policy"]: r["speedup"] for r in rows}
    assert speed["adaptive"] > 1.05 * max(v for p, v in speed.items() if p.startswith("fixed-"))


def test_constant_acceptance_converges_to_the_best_fixed_k(make_trace, toy_costs):
    trace = make_trace([(20, {"eagle": [1] + [4] * 400}) for _ in range(3)])
    rt = ReplayTrace.from_trace(trace, ("eagle",))
    steep = CostModel("steep", LinearCost(1.0, 0.5, 0.0), 0.1, {"eagle": LinearCost(0.05, 0.05, 0.0)})
    for costs, settled, close in ((steep, 0.95, 0.95), (toy_costs, 0.6, 0.97)):
        rows = run_grid([trace], [("eagle",)], [f"fixed-{k}" for k in range(1, 9)] + ["adaptive"], [1, 4], costs,
                         mode="paper")
        for b in (1, 4):
            at = {r["policy"]: r["speedup"] for r in rows if r["batch_size"] == b}
            best = max((p for p in at if p.startswith("fixed-")), key=at.get)
            assert best == "fixed-3"
            traj = run_trajectory(rt, make_policy("adaptive", ("eagle",), costs), np.ones(1), batch_size=b)
            late = traj.k[traj.position > 200]
            assert set(late.tolist()) <= {3, 4}
            # Early on the guard probes deeper k (it is optimistic about depths never tried); late probes of
            # k = 4 re-test the depth that always fails: under the toy costs a fourth draft adds only ~2% to
            # a step (its KV term dominates), so they fade slowly there.
            assert np.mean(late == 3) >= settled
            assert at["adaptive"] >= close * at[best]  # steep: the early probes of deep k cost ~16% a draft


@pytest.mark.parametrize("mode", ["paper", "serve"])
def test_no_speculation_when_drafts_cost_more_than_they_save(make_trace, mode):
    costly = CostModel("costly", LinearCost(1.0, 5.0, 0.0), 0.1, {"eagle": LinearCost(1.0, 1.0, 0.0)})
    trace = make_trace([(8, {"eagle": [1] + [3] * 40}) for _ in range(4)])
    rows = run_grid([trace], [("eagle",)], ["fixed-1", "adaptive"], [1, 8], costly, mode=mode)
    for r in rows:
        if r["policy"] == "adaptive":
            assert r["speedup"] == pytest.approx(1.0)
            assert r["acceptance_rate"] != r["acceptance_rate"]  # NaN: nothing proposed
        else:
            assert r["speedup"] < 1.0  # fixed-1 loses


def test_choose_batch_speculates_deeply_when_drafts_are_free_and_always_accepted():
    est = AcceptanceEstimate(1)
    est.reset(2)
    for _ in range(30):
        est.observe(np.array([0, 1]), np.zeros(2), np.full(2, 6), np.full(2, 6))
    free = CostModel("free", LinearCost(1.0, 0.0, 0.0), 0.0, {"eagle": LinearCost(0.0, 0.0, 0.0)})
    k, p = choose_batch(est.outlook(np.array([0, 1]), 8), free, ("eagle",), 100.0)
    assert k.tolist() == [8, 8] and p.tolist() == [0, 0]


def test_estimator_learns_from_censored_outcomes():
    est = AcceptanceEstimate(1)
    est.reset(1)
    before = est.outlook(np.array([0]), 4).expected()[0, 0]
    for _ in range(10):
        est.observe(np.array([0]), np.array([0]), np.array([4]), np.array([0]))  # first draft always rejected
    after = est.outlook(np.array([0]), 4).expected()[0, 0]
    assert after[0] == before[0] == 1.0 and after[4] < before[4] and after[4] < 1.2


def test_gap_recovered_is_policy_minus_best_fixed_over_oracle_minus_best_fixed():
    def row(proposers, policy, speedup, b=1):
        return {"trace": "t", "mode": "serve", "cost_model": "c", "batch_size": b, "proposers": proposers,
                "policy": policy, "speedup": speedup}

    rows = [row("eagle", "fixed-1", 1.2), row("eagle", "fixed-3", 1.5), row("eagle", "oracle", 2.0),
            row("eagle", "adaptive", 1.8), row("ngram", "fixed-3", 1.6), row("ngram", "oracle", 1.6),
            row("ngram", "adaptive", 1.5), row("ngram,eagle", "oracle", 2.6),
            row("ngram,eagle", "adaptive-combine", 2.1), row("eagle", "adaptive", 1.0, b=8)]
    add_gap_recovered(rows)
    gap = {(r["proposers"], r["policy"], r["batch_size"]): r["gap_recovered"] for r in rows}
    assert gap[("eagle", "adaptive", 1)] == pytest.approx(0.6)
    assert gap[("eagle", "oracle", 1)] == pytest.approx(1.0) and gap[("eagle", "fixed-3", 1)] == pytest.approx(0.0)
    assert gap[("ngram", "adaptive", 1)] is None  # oracle does not beat the best fixed-k
    assert gap[("ngram,eagle", "adaptive-combine", 1)] == pytest.approx((2.1 - 1.6) / (2.6 - 1.6))
    assert gap[("eagle", "adaptive", 8)] is None  # no oracle at that batch size


def test_gap_recovered_counts_plain_decoding_among_the_fixed_k():
    """Where every k >= 1 loses, the best fixed choice is not to speculate (speedup 1): a policy that stops
    speculating there recovers nothing, and a drafter whose oracle loses too leaves no gap at all."""
    def row(proposers, policy, speedup):
        return {"trace": "t", "mode": "serve", "cost_model": "c", "batch_size": 4, "proposers": proposers,
                "policy": policy, "speedup": speedup}

    rows = [row("slow", "fixed-1", 0.73), row("slow", "oracle", 0.94), row("slow", "adaptive", 1.0),
            row("mid", "fixed-1", 0.8), row("mid", "oracle", 1.2), row("mid", "adaptive", 1.1),
            row("unlisted", "oracle", 1.5), row("unlisted", "adaptive", 1.2)]
    add_gap_recovered(rows)
    gap = {(r["proposers"], r["policy"]): r["gap_recovered"] for r in rows}
    assert gap[("slow", "adaptive")] is None  # even the oracle loses to plain decoding: nothing to recover
    assert gap[("mid", "adaptive")] == pytest.approx((1.1 - 1.0) / (1.2 - 1.0))
    assert gap[("mid", "fixed-1")] == pytest.approx((0.8 - 1.0) / (1.2 - 1.0))
    assert gap[("unlisted", "adaptive")] == pytest.approx(0.4)  # fixed-0 counts even where no fixed-K was run


def test_sweep_rows_carry_gap_recovered(make_trace, toy_costs):
    trace = random_trace(make_trace, n=3, gen=40)
    rows = run_grid([trace], [("eagle",)], ["fixed-1", "fixed-3", "oracle", "adaptive"], [1, 4], toy_costs)
    for b in (1, 4):
        at = {r["policy"]: r for r in rows if r["batch_size"] == b}
        best = max(at["fixed-1"]["speedup"], at["fixed-3"]["speedup"])
        want = (at["adaptive"]["speedup"] - best) / (at["oracle"]["speedup"] - best)
        assert at["adaptive"]["gap_recovered"] == pytest.approx(want)


def test_adaptive_needs_a_cost_model_and_scopes():
    from specscope.errors import SpecscopeError
    from specscope.policy.registry import supports

    with pytest.raises(SpecscopeError, match="needs a cost model"):
        make_policy("adaptive", ("eagle",))
    assert supports("adaptive", ("eagle",)) and not supports("adaptive", ("ngram", "eagle"))
    assert supports("adaptive-combine", ("ngram", "eagle")) and not supports("adaptive-combine", ("eagle",))
    assert plain_decoding(("eagle",)).reference_pricing
