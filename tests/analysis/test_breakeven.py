"""Break-even acceptance lengths from a profile: (verify + draft + host time) / (plain step + host time)."""

import numpy as np
import pandas as pd
import pytest

from specscope.analysis import breakeven


def _profile():
    rows = []
    for batch, unit in ((1, 0.010), (4, 0.020)):
        for context, scale in ((64, 1.0), (256, 1.2)):
            for k in (0, 1, 3):
                rows.append(("decode" if k == 0 else "verify", batch, k, context, unit * scale * (1 + 0.4 * k)))
                if k:
                    rows.append(("draft:draft", batch, k, context, 0.003 * k * scale))
        rows += [("sample", batch, 0, 64, 0.001), ("overhead", batch, 0, 64, 0.002)]
    return pd.DataFrame(rows, columns=["step_kind", "batch_size", "k", "context", "seconds"])


def test_break_even_is_the_step_cost_over_a_plain_step():
    costs = breakeven.step_costs(_profile())
    assert set(costs["proposer"]) == {"verify only", "draft"}
    unit = 0.010 * 1.1  # median over the two contexts
    plain = unit + 0.003
    expected_verify = (unit * (1 + 0.4 * 3) + 0.003) / plain
    expected_draft = (unit * (1 + 0.4 * 3) + 0.003 * 3 * 1.1 + 0.003) / plain
    assert breakeven.break_even_at(costs, 1, 3, "verify only") == pytest.approx(expected_verify)
    assert breakeven.break_even_at(costs, 1, 3, "draft") == pytest.approx(expected_draft)
    assert breakeven.break_even_at(costs, 1, 0, "draft") == pytest.approx(1.0)  # k = 0 is plain decoding
    assert np.isnan(breakeven.break_even_at(costs, 16, 3, "draft"))


def test_summary_says_whether_the_measured_acceptance_pays():
    costs = breakeven.step_costs(_profile())
    acceptance = pd.DataFrame([{"workload": w, "method": "draft", "k": 3, "batch_size": 1, "mean_acc_len": a}
                               for w, a in (("chat", 1.6), ("code-edit", 2.0))])
    (row,) = breakeven.summary(costs, acceptance).to_dict("records")
    assert row["break_even"] == pytest.approx(breakeven.break_even_at(costs, 1, 3, "draft"))
    assert row["verify_cost"] == pytest.approx(breakeven.break_even_at(costs, 1, 3, "verify only"))
    assert (row["acc_low"], row["acc_high"], row["pays"]) == (1.6, 2.0, breakeven.DOES_NOT_PAY)
    high = acceptance.assign(mean_acc_len=[3.0, 3.5])
    assert breakeven.summary(costs, high)["pays"].iloc[0] == breakeven.PAYS
    mixed = acceptance.assign(mean_acc_len=[1.5, 3.5])
    assert breakeven.summary(costs, mixed)["pays"].iloc[0] == breakeven.SOME


def test_a_profile_without_batch_and_k_columns_gives_nothing():
    assert breakeven.step_costs(_profile().drop(columns=["k"])).empty
    assert breakeven.step_costs(None).empty
