"""The acceptance estimator of specscope/adaptive.py: prior weight chosen online, pooled rate per step, idle optimism."""

import numpy as np

from specscope.adaptive import AcceptanceEstimate, AdaptiveParams

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
