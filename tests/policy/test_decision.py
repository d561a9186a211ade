"""StepPrices of specscope/policy/decision.py: a step's seconds as the decision prices them, one table per step for every width."""

import numpy as np
import pytest

from specscope.policy.decision import StepPrices, batch_seconds
from specscope.costs.model import CostModel, LinearCost

COSTS = CostModel("toy", LinearCost(0.010, 0.002, 0.0), 0.001,
                  {"eagle": LinearCost(0.003, 0.001, 0.0), "ngram": LinearCost(0.0, 0.0, 0.0)})
NAMES = ("eagle", "ngram")


def test_per_draft_past_the_measured_marginal_follows_the_cost_models_slope():
    measured = np.array([0.0, 0.005, 0.006])  # one and two drafts timed; deeper ones are not
    prices = StepPrices(COSTS, NAMES, 0.0, 1, False, measured)
    step = prices.per_draft(np.array([1, 0]), 4)  # [n, 4]: seconds drafts 1..4 add
    # ngram drafts are free, so its row is the target alone: measured, then c_tok per draft
    assert step[0] == pytest.approx([0.005, 0.001, 0.002, 0.002])
    assert step[1] == pytest.approx(step[0] + 0.001 + np.array([0.001, 0, 0, 0]))  # + d_tok (+ d_tok once)


def test_one_table_serves_every_width_of_the_step():
    measured = np.array([0.0, 0.004])
    k, p = np.array([[1, 0], [3, 2]]), np.array([[0, 1], [0, 0]])
    narrow_first = StepPrices(COSTS, NAMES, 5.0, 1, False, measured)
    seconds = narrow_first.choices(k[:1], p[:1])
    wide = narrow_first.per_draft(np.array([0, 1]), 6)  # wider than what the first call needed
    fresh = StepPrices(COSTS, NAMES, 5.0, 1, False, measured)
    assert np.array_equal(wide, fresh.per_draft(np.array([0, 1]), 6))
    assert np.array_equal(seconds, fresh.choices(k[:1], p[:1]))
    assert np.array_equal(narrow_first.choices(k, p), batch_seconds(COSTS, NAMES, 5.0, k, p, measured))


def test_a_steps_shares_add_up_to_the_step():
    k, p = np.array([[2, 0, 3]]), np.array([[0, 0, 0]])
    shares = StepPrices(COSTS, NAMES, 0.0, 1, False).choices(k, p)[0]
    verify = 0.010 + 0.002 * (3 + 5)  # 8 tokens verified
    draft = 0.003 + 0.001 * (3 + 4)  # eagle drafts for two sequences, each its k drafts + its last token
    assert shares.sum() == pytest.approx(verify + draft + 0.001)
