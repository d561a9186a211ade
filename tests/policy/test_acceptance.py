"""The acceptance estimator of specscope/policy/acceptance.py: prior weight chosen online, pooled rate per step, idle optimism,
exploration (closed loops with `choose_batch`)."""

import numpy as np

from specscope.policy.acceptance import AcceptanceEstimate, AdaptiveParams

ROWS = np.arange(8)


def first_rate(est, rows=ROWS):
    """P(first draft accepted) the estimator now expects, per row (state COLD/HOT as it is)."""
    out = est.outlook(rows, 4)
    return np.take_along_axis(out.first[:, 0, :], out.state[:, :1], axis=1)[:, 0]


def observe(est, accepted, k=1):
    est.observe(ROWS, np.zeros(8), np.full(8, k), np.asarray(accepted))


def test_sequence_specific_acceptance_picks_a_small_prior_weight():
    est = AcceptanceEstimate(1)
    est.reset(8)
    for _ in range(60):  # rows 0-3 always accept, rows 4-7 never: the sequence's history is what counts
        observe(est, [1, 1, 1, 1, 0, 0, 0, 0])
    assert est.prior_weight()[0] == min(AdaptiveParams().prior_weights)
    rate = first_rate(est)
    assert rate[:4].min() > 0.8 and rate[4:].max() < 0.2


def test_acceptance_unrelated_to_the_sequence_picks_a_large_prior_weight():
    est = AcceptanceEstimate(1)
    est.reset(8)
    rng = np.random.default_rng(0)
    for _ in range(200):  # every sequence accepts with the same probability, independently
        observe(est, (rng.random(8) < 0.4).astype(int))
    assert est.prior_weight()[0] >= 16
    assert np.all(np.abs(first_rate(est) - 0.4) < 0.15)


def test_a_step_counts_once_in_the_pool_however_many_sequences_ran():
    one, many = AcceptanceEstimate(1), AcceptanceEstimate(1)
    one.reset(8)
    many.reset(8)
    one.observe(ROWS[:1], np.zeros(1), np.ones(1), np.zeros(1))
    observe(many, np.zeros(8))  # eight alike rejections: one step's worth of evidence
    assert np.allclose(one._pool(), many._pool())


def test_an_idle_sequence_leans_towards_trying_again():
    est = AcceptanceEstimate(1)
    est.reset(8)
    observe(est, np.zeros(8))
    busy = first_rate(est)[0]
    est.observe(ROWS[:1], np.zeros(1), np.zeros(1), np.zeros(1))  # row 0 proposed nothing this step
    assert first_rate(est)[0] > busy


def test_a_depth_never_reached_borrows_the_rate_before_it():
    est = AcceptanceEstimate(1)
    est.reset(8)
    for _ in range(50):  # k = 2, both drafts always accepted: depth 1 is sure, depths 2+ never observed
        observe(est, np.full(8, 2), k=2)
    cont = est.outlook(ROWS, 6).cont[0]
    assert cont[1] > 0.95 and np.all(cont[2:] > 0.9)


def closed_loop(costs, first, cont, steps, n=16, seed=0):
    """Run the estimator and `choose_batch` against sequences whose drafts are accepted with P(first draft) =
    `first` and P(each later one | the previous) = `cont`; returns the k chosen at every step [steps, n]."""
    from specscope.policy.decision import choose_batch

    rng = np.random.default_rng(seed)
    est = AcceptanceEstimate(1)
    est.reset(n)
    rows, chosen = np.arange(n), []
    for _ in range(steps):
        k, _ = choose_batch(est.outlook(rows, 8), costs, ("ngram",), 0.0)
        draws = rng.random((n, 8)) < np.r_[first, np.full(7, cont)]
        accepted = np.minimum(np.argmin(np.c_[draws, np.zeros(n, bool)], axis=1), k)  # leading successes, cut at k
        est.observe(rows, np.zeros(n), k, accepted)
        chosen.append(k)
    return np.array(chosen)


def test_a_batch_whose_break_even_rate_is_above_the_prior_still_tries_speculating():
    from specscope.costs.model import CostModel, LinearCost

    # 16 sequences: a plain step costs 1 + 16 * 0.1 = 2.6 s for 16 tokens, so a draft token (0.1 s) pays only
    # when accepted with probability > ~0.6, above the 0.5 prior: without exploration nothing is ever tried.
    costs = CostModel("batch", LinearCost(1.0, 0.1, 0.0), 0.0, {"ngram": LinearCost(0.0, 0.0, 0.0)})
    ks = closed_loop(costs, first=0.9, cont=0.9, steps=60)
    assert ks[0].min() > 0  # the first step already tries
    assert (ks[-20:] >= 2).mean() > 0.9  # and the batch keeps drafting deeply


def test_a_second_draft_is_tried_once_the_first_proves_good():
    from specscope.costs.model import CostModel, LinearCost

    # a fixed 0.5 prior on the second depth made a second draft look like a loss at these costs, so k = 1 was
    # chosen for good and the second depth never observed (k >= 3 in none of the last steps)
    costs = CostModel("mid", LinearCost(1.0, 0.1, 0.0), 0.0, {"ngram": LinearCost(0.0, 0.08, 0.0)})
    ks = closed_loop(costs, first=0.95, cont=0.95, steps=60, n=4)
    assert (ks[-20:] >= 3).mean() > 0.8


def test_the_exploration_bonus_fades_with_evidence():
    est = AcceptanceEstimate(1)
    est.reset(8)
    fresh = est._pool_bound()[0, 0]
    for _ in range(100):
        observe(est, np.zeros(8))
    assert fresh == 1.0  # nothing seen yet: any rate is possible
    assert est._pool_bound()[0, 0] - est._pool()[0, 0] < 0.05


def test_an_idle_proposer_forgets_a_sequences_bad_record_in_both_states():
    est = AcceptanceEstimate(1, AdaptiveParams(prior_weights=(1.0,)))
    est.reset(8)
    observe(est, np.full(8, 2), k=2)  # all accepted: HOT
    for _ in range(3):
        observe(est, np.r_[0, np.full(7, 2)], k=2)  # row 0 fails in HOT, others stay HOT
        observe(est, np.full(8, 2), k=2)
    hot_rate = lambda: est.outlook(ROWS, 4).first[0, 0, 1]
    bad = hot_rate()
    for _ in range(10):
        est.observe(ROWS[:1], np.zeros(1), np.zeros(1), np.zeros(1))  # row 0 idles
    assert hot_rate() > bad + 0.2  # its HOT record faded towards the pool (which is high)


def test_measured_verify_times_override_the_linear_price_of_drafts():
    from specscope.policy.decision import choose_batch
    from specscope.costs.model import CostModel, LinearCost

    costs = CostModel("free", LinearCost(1.0, 0.0, 0.0), 0.0, {"ngram": LinearCost(0.0, 0.0, 0.0)})
    est = AcceptanceEstimate(1)
    est.reset(1)
    for _ in range(20):
        est.observe(np.zeros(1), np.zeros(1), np.full(1, 4), np.full(1, 2))
    outlook = est.outlook(np.zeros(1), 8)
    assert choose_batch(outlook, costs, ("ngram",), 0.0)[0][0] == 8  # drafts are free: the most
    steep = np.r_[0.0, 0.01, 0.02, 0.03, np.full(5, 5.0)]  # past three drafts a step costs 5x more
    assert choose_batch(outlook, costs, ("ngram",), 0.0, target_marginal=steep)[0][0] == 3


def test_a_step_where_nothing_ran_fades_as_a_proposer_that_did_not_run_does():
    """The shortcut for a step where no sequence drafted ends where the general update leaves a proposer (and
    a sequence) that did not run: counts faded by `decay`, COLD, idle, nothing else learnt."""
    import copy

    est = AcceptanceEstimate(2)
    est.reset(2)
    for a in ([2, 0], [1, 2], [2, 2]):  # some history for both proposers and rows
        est.observe(np.arange(2), np.array([0, 1]), np.array([2, 2]), np.array(a))
    other, idle = copy.deepcopy(est), copy.deepcopy(est)
    other.observe(np.arange(2), np.zeros(2), np.array([1, 0]), np.array([1, 0]))  # only proposer 0, row 0 ran
    idle.observe(np.arange(2), np.zeros(2), np.zeros(2), np.zeros(2))  # nothing ran
    for name in ("first_s", "first_f", "hot"):
        a, b = getattr(other, name), getattr(idle, name)
        assert a[1].tolist() == b[1].tolist() and a[0, 1].tolist() == b[0, 1].tolist(), name  # row 1; proposer 1
    for name in ("pool_s", "pool_f", "loss", "at_risk", "stopped", "pool_seen"):
        assert getattr(other, name)[1].tolist() == getattr(idle, name)[1].tolist(), name
    assert idle.idle.tolist() == [True, True] and other.idle.tolist() == [False, True]
    assert idle.pool_seen.tolist() == est.pool_seen.tolist() and idle.loss.tolist() == est.loss.tolist()
