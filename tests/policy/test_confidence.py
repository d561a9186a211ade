"""Confidence calibration and the in-step stop: what verification labels, depth priors, the stop rule."""

import numpy as np
import pytest

from specscope.policy.confidence import ConfidenceCalibration, ConfidenceParams, kept_drafts


def test_only_verified_drafts_are_labelled():
    cal = ConfidenceCalibration(1, ConfidenceParams(depths=1))
    conf = np.array([[0.995, 0.995, 0.1, 0.995, 0.995]])
    cal.observe(np.array([0]), conf, np.array([5]), np.array([2]))  # 2 accepted, the third rejected
    assert cal.seen[0, 0].sum() == 3  # drafts 4 and 5 came after the rejection: nothing is known of them
    assert cal.accepted[0, 0, -1] == 2 and cal.seen[0, 0, -1] == 2
    assert cal.accepted[0, 0, 0] == 0 and cal.seen[0, 0, 0] == 1
    cal.observe(np.array([0]), conf[:, :2], np.array([2]), np.array([2]))  # all accepted: nothing rejected
    assert cal.seen[0, 0].sum() == 5 and cal.accepted[0, 0].sum() == 4


def test_rates_follow_the_evidence_and_deeper_drafts_borrow_from_shallower_ones():
    cal = ConfidenceCalibration(1, ConfidenceParams(prior_weight=4.0, depths=3))
    fresh = cal.table()[0]
    assert fresh[0, -1] == pytest.approx(0.995) and (fresh == fresh[0]).all()  # the bin midpoints, every depth
    for _ in range(200):  # confident first drafts rejected half the time
        cal.observe(np.array([0]), np.array([[0.995]]), np.array([1]), np.array([_ % 2]))
    table = cal.table()[0]
    assert table[0, -1] == pytest.approx(0.5, abs=0.02)
    assert table[1, -1] == pytest.approx(table[0, -1], abs=0.03)  # depth 2 unseen: it borrows depth 1's rate
    survival = cal.survival(np.array([0]), np.array([[0.995, 0.995, 0.995]]))[0]
    assert survival[0] > survival[1] > survival[2]


def test_kept_drafts_stops_at_the_first_draft_that_does_not_pay_but_keeps_one():
    survival = np.array([[0.9, 0.6, 0.7, 0.2], [0.1, 0.05, 0.01, 0.0], [0.9, 0.8, 0.7, 0.6]])
    floor = np.full((3, 4), 0.5)
    assert kept_drafts(survival, np.array([4, 4, 3]), floor).tolist() == [3, 1, 3]
    assert kept_drafts(survival, np.array([0, 2, 1]), floor).tolist() == [0, 1, 1]


def test_depth_rates_pool_each_depth_and_borrow_where_unseen():
    cal = ConfidenceCalibration(1, ConfidenceParams(prior_weight=1.0, depths=3))
    for conf in (0.3, 0.995):  # first drafts: accepted 9 times in 10 whatever their confidence
        for i in range(50):
            cal.observe(np.array([0]), np.array([[conf]]), np.array([1]), np.array([int(i % 10 != 0)]))
    rates = cal.depth_rates(0)
    assert rates[0] == pytest.approx(0.9, abs=0.01)
    assert rates[1] == pytest.approx(rates[0]) and rates[2] == pytest.approx(rates[0])  # nothing seen deeper
