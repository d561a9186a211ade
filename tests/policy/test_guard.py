"""Counterfactual guard: exact scores from censored outcomes, per-position charging, following a better fixed k."""

import numpy as np

from specscope.policy.acceptance import AcceptanceEstimate, Outlook
from specscope.policy.decision import StepPrices, batch_seconds, replicated_seconds
from specscope.policy.guard import MODEL, PLAIN, CounterfactualGuard, GuardParams
from specscope.costs.model import CostModel, LinearCost

COSTS = CostModel("toy", LinearCost(1.0, 0.1, 0.0), 0.5, {"eagle": LinearCost(0.2, 0.05, 0.0)})


def outlook(n, first=0.5, cont=0.5, k_cap=8, evidence=None):
    cont_row = np.full((1, k_cap), cont)
    return Outlook(np.full((n, 1, 2), first), cont_row, np.zeros((n, 1), dtype=np.int64), evidence)


def scored(guard, rows, model_k, k_run, accepted, seconds=None, view=None):
    """One step: the guard's experts with the model at model_k, k_run executed, `accepted` seen; per-expert cost."""
    view = view or outlook(len(rows))
    ks, ps = guard.experts(np.asarray(model_k), np.zeros(len(rows), dtype=np.int64), None, view.k_cap)
    sec = np.ones(ks.shape) if seconds is None else seconds(ks, ps)
    guard.choose(np.asarray(rows), view, ks, ps, sec)
    before = 0.0 if guard.cost is None else guard.cost.copy()
    guard.observe(np.asarray(rows), np.zeros(len(rows)), np.asarray(k_run), np.asarray(accepted))
    return ks, guard.cost - before


def test_a_seen_rejection_scores_every_expert_exactly():
    guard = CounterfactualGuard(1, GuardParams(ks=(1, 2, 5), pair_ks=(), decay=1.0))
    ks, cost = scored(guard, [0], [3], [3], [1])  # 3 drafts, the second rejected: any k' >= 1 commits 2
    tokens = {int(k): 1 + min(1, int(k)) for k in ks[:, 0]}
    assert cost.tolist() == [2 * 1.0 / tokens[int(k)] for k in ks[:, 0]]  # covered 2 positions, 1 s per step


def test_a_censored_step_imputes_deeper_drafts_from_the_continuation_rates():
    guard = CounterfactualGuard(1, GuardParams(ks=(1, 2, 4), pair_ks=(), decay=1.0, explore=0.0))
    view = outlook(1, cont=0.5)
    ks, cost = scored(guard, [0], [2], [2], [2], view=view)  # both drafts accepted: k' = 4 is not known
    per_expert = dict(zip(ks[:, 0].tolist()[1:], cost.tolist()[1:]))
    assert per_expert[1] == 3 / 2 and per_expert[2] == 3 / 3  # exact: 1 + k' (k' <= 2)
    assert np.isclose(per_expert[4], 3 / (3 + 0.5 + 0.25))  # draft 3 with P 0.5, draft 4 with P 0.25


def test_optimism_raises_a_little_explored_depth():
    plain, eager = (CounterfactualGuard(1, GuardParams(ks=(4,), pair_ks=(), decay=1.0, explore=e)) for e in (0, 3))
    few = np.zeros((1, 8)) + 2.0
    _, a = scored(plain, [0], [2], [2], [2], view=outlook(1, evidence=few))
    _, b = scored(eager, [0], [2], [2], [2], view=outlook(1, evidence=few))
    assert b[PLAIN + 1] < a[PLAIN + 1]  # more tokens imputed: fewer seconds per token for k' = 4
    assert b[PLAIN] == a[PLAIN]  # plain decoding commits one token a position, whatever is imputed


def test_steps_are_charged_per_position_not_per_step():
    # Two sequences: one in a copyable run (k = 8 all accepted), one missing at once. Per step, k' = 8 and k' = 1
    # differ by 7 tokens on the run; per position the run's step counts for the 9 positions it covered, at
    # each expert's own seconds per token there.
    guard = CounterfactualGuard(1, GuardParams(ks=(1, 8), pair_ks=(), decay=1.0))
    ks, cost = scored(guard, [0, 1], [8, 8], [8, 8], [8, 0], view=outlook(2, k_cap=8))
    fixed1, fixed8 = cost[PLAIN + 1], cost[PLAIN + 2]
    assert np.isclose(fixed8, 9 * 1 / 9 + 1 * 1 / 1) and np.isclose(fixed1, 9 * 1 / 2 + 1 * 1 / 1)
    assert np.isclose(cost[PLAIN], 9 * 1 / 1 + 1 * 1 / 1)  # plain decoding: one token per step


def test_the_guard_follows_a_fixed_k_when_the_model_is_wrong():
    """Acceptance is constant (every step accepts 3 drafts); a model stuck at k = 1 is overruled by fixed k = 3."""
    guard = CounterfactualGuard(1, GuardParams(ks=(1, 2, 3, 4, 6), pair_ks=()))
    est = AcceptanceEstimate(1)
    n = 8
    est.reset(n)
    rows = np.arange(n)
    chosen = []
    for _ in range(200):
        view = est.outlook(rows, 8)
        ks, ps = guard.experts(np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64), None, view.k_cap)
        k, p = guard.choose(rows, view, ks, ps, batch_seconds(COSTS, ("eagle",), 0.0, ks, ps))
        accepted = np.minimum(k, 3)
        est.observe(rows, p, k, accepted)
        guard.observe(rows, p, k, accepted)
        chosen.append(int(k[0]))
    assert np.mean(np.array(chosen[-100:]) == 3) >= 0.9
    assert guard.followed[MODEL] >= guard.params.warmup  # the model decides during the warm-up


def test_the_guard_stops_speculating_where_no_k_pays():
    """Drafts are dear and nothing is ever accepted; a model that keeps drafting is overruled by plain decoding
    once the warm-up is over (without that expert the guard can only pick among drafting rules)."""
    dear = CostModel("dear", LinearCost(1.0, 0.1, 0.0), 0.5, {"eagle": LinearCost(2.0, 0.05, 0.0)})
    for plain in (True, False):
        guard = CounterfactualGuard(1, GuardParams(ks=(1, 2), pair_ks=(), plain=plain))
        n, rows, drafted = 4, np.arange(4), []
        est = AcceptanceEstimate(1)
        est.reset(n)
        for _ in range(60):
            view = est.outlook(rows, 4)
            ks, ps = guard.experts(np.full(n, 2), np.zeros(n, dtype=np.int64), None, view.k_cap)
            k, p = guard.choose(rows, view, ks, ps, batch_seconds(dear, ("eagle",), 0.0, ks, ps))
            est.observe(rows, p, k, np.zeros(n))
            guard.observe(rows, p, k, np.zeros(n))
            drafted.append(int(k.sum()))
        if plain:
            assert sum(drafted[guard.params.warmup + 1:]) == 0 and guard.followed[PLAIN] > 40
        else:
            assert min(drafted) > 0  # every expert drafts


def test_a_stopped_chain_is_charged_to_every_expert_that_would_have_drafted_it():
    """Two rows ask for the longest chain and a confidence stop keeps 2 and 5 drafts; every expert that drafts on
    them with that proposer would have run the same chains (and is priced for them), the others keep their own."""
    guard = CounterfactualGuard(2, GuardParams(ks=(1, 3), pair_ks=(), decay=1.0))
    costs = CostModel("toy", LinearCost(1.0, 0.1, 0.0), 0.5,
                      {"eagle": LinearCost(0.2, 0.05, 0.0), "ngram": LinearCost(0.0, 0.0, 0.0)})
    names, n = ("eagle", "ngram"), 3
    prices = StepPrices(costs, names, 0.0, 1, False)
    view = Outlook(np.full((n, 2, 2), 0.5), np.full((2, 8), 0.5), np.zeros((n, 2), dtype=np.int64), None)
    ks, ps = guard.experts(np.array([1, 0, 2]), np.array([0, 0, 1]), None, view.k_cap)
    before = prices.choices(ks, ps)
    guard.choose(np.arange(n), view, ks, ps, before)
    ran = np.array([2, 0, 5])  # row 2 drafted 5 n-gram tokens, not a stopped chain (the model asked for 2)
    chained = np.array([True, False, False])
    guard.chains_ran(ran, chained, prices)
    step = guard.pending
    eagle_on_row0 = (step.p[:, 0] == 0) & (ks[:, 0] > 0)
    assert (step.k[eagle_on_row0, 0] == 2).all() and (step.k[~eagle_on_row0, 0] == ks[~eagle_on_row0, 0]).all()
    assert step.k[MODEL].tolist() == [2, 0, 5]  # the followed expert: what ran
    assert (step.k[1:, 1:] == ks[1:, 1:]).all()  # rows without a chain: the others keep their own drafts
    assert np.allclose(step.seconds, prices.choices(step.k, step.p))
    assert not np.allclose(step.seconds, before)


def test_batch_seconds_shares_add_up_to_the_step_choose_batch_prices():
    k = np.array([[0, 2, 3], [1, 1, 0]])
    p = np.zeros_like(k)
    shares = batch_seconds(COSTS, ("eagle",), 10.0, k, p)
    t = COSTS.target
    for row, total in zip(k, shares.sum(axis=1)):
        drafting = row > 0
        step = t.c_fixed + t.c_tok * (len(row) + row.sum()) + COSTS.overhead
        step += 0.2 + 0.05 * (row[drafting] + 1).sum()
        assert np.isclose(total, step)


def test_replicated_seconds_prices_each_row_as_its_own_batch():
    k = np.array([[0, 3]])
    p = np.zeros_like(k)
    sec = replicated_seconds(COSTS, ("eagle",), np.array([5.0, 5.0]), 4, k, p)
    plain = COSTS.target(4 * 1, 5.0) + COSTS.overhead
    drafted = COSTS.target(4 * 4, 5.0) + COSTS.overhead + COSTS.draft("eagle")(4 * 4, 5.0)
    assert np.allclose(sec, [[plain, drafted]])
