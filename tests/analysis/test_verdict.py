"""The verdict: enable / do not enable / no measurable difference, by the gain against its uncertainty."""

import numpy as np
import pandas as pd
import pytest

from specscope.analysis import metrics, verdict


def _runs(rows):
    """rows: (cell, method, k, batch, throughput[, spread])."""
    return metrics.with_speedup(pd.DataFrame([{
        "cell": r[0], "model": "m", "workload": "chat", "method": r[1], "k": r[2], "batch_size": r[3],
        "throughput_tok_s": r[4], "label": r[1] if r[1] == "none" else f"{r[1]} k={r[2]}",
        "throughput_rel_spread": r[5] if len(r) > 5 else np.nan} for r in rows]))


def _requests(cell, speeds, tokens=20):
    """One request per speed (tokens / s), ids 0..n-1."""
    return pd.DataFrame([{"cell": cell, "id": str(i), "output_len": tokens, "latency_s": tokens / s}
                         for i, s in enumerate(speeds)])


@pytest.mark.parametrize("gain,uncertainty,expected", [
    (10.0, 4.0, verdict.ENABLE), (-10.0, 4.0, verdict.DISABLE), (3.0, 4.0, verdict.NO_DIFFERENCE),
    (-3.0, 4.0, verdict.NO_DIFFERENCE), (0.5, np.nan, verdict.ENABLE),
])
def test_decide(gain, uncertainty, expected):
    assert verdict.decide(gain, uncertainty) == expected


def test_uncertainty_from_the_requests_both_cells_ran():
    base = _requests("none", [10, 20, 40, 10])
    steady = _requests("sd", [12, 24, 48, 12])  # every request exactly 1.2x faster: no spread
    noisy = _requests("sd", [15, 16, 60, 9])
    assert verdict.request_speed_uncertainty(pd.concat([base, steady]), "sd", "none") == (pytest.approx(0.0), 4)
    ratios = np.log(np.array([15, 16, 60, 9]) / np.array([10, 20, 40, 10]))
    expected = np.expm1(2 * ratios.std(ddof=1) / 2)
    assert verdict.request_speed_uncertainty(pd.concat([base, noisy]), "sd", "none") == (pytest.approx(expected), 4)
    assert np.isnan(verdict.request_speed_uncertainty(pd.concat([base.iloc[:1], noisy.iloc[:1]]), "sd", "none")[0])


def test_measured_verdicts_per_batch_size():
    runs = _runs([("none1", "none", 0, 1, 10.0), ("ng1", "ngram", 3, 1, 13.0), ("dr1", "draft", 3, 1, 9.0),
                  ("none4", "none", 0, 4, 30.0), ("ng4", "ngram", 3, 4, 30.6),
                  ("none16", "none", 0, 16, 60.0), ("ng16", "ngram", 3, 16, 45.0)])
    requests = pd.concat([
        _requests("none1", [10, 10, 10]), _requests("ng1", [12.8, 13.0, 13.2]),
        _requests("none4", [30, 30, 30]), _requests("ng4", [28, 33, 31]),  # +2% within a wide spread
        _requests("none16", [60, 60, 60]), _requests("ng16", [44, 45, 46]),
    ])
    table = verdict.measured_verdicts(runs, requests).set_index("batch_size")
    assert table.loc[1, "verdict"] == verdict.ENABLE and table.loc[1, "label"] == "ngram k=3"
    assert table.loc[1, "gain_pct"] == pytest.approx(30.0)
    assert table.loc[4, "verdict"] == verdict.NO_DIFFERENCE and table.loc[4, "uncertainty_pct"] > 2.0
    assert table.loc[16, "verdict"] == verdict.DISABLE
    assert set(table["uncertainty_from"]) == {verdict.FROM_REQUESTS} and set(table["matched"]) == {3}


def test_repeated_cells_use_their_spread():
    runs = _runs([("none1", "none", 0, 1, 10.0, 0.03), ("ng1", "ngram", 3, 1, 10.5, 0.04)])
    row = verdict.measured_verdicts(runs, pd.DataFrame(columns=["cell", "id", "output_len", "latency_s"])).iloc[0]
    assert row["uncertainty_from"] == verdict.FROM_REPEATS
    assert row["uncertainty_pct"] == pytest.approx(100 * 2 * 0.05 * 1.05)  # 2 x hypot(3%, 4%) x speedup
    assert row["verdict"] == verdict.NO_DIFFERENCE  # +5% within +-10.5%


def test_simulated_verdicts_cover_unmeasured_batch_sizes_within_the_model_error():
    sim = pd.DataFrame([
        {"workload": "chat", "mode": "serve", "batch_size": b, "policy": p, "proposers": "ngram", "policy_kind": kind,
         "speedup": s}
        for b, p, kind, s in [(1, "fixed-3", "fixed", 1.3), (8, "fixed-3", "fixed", 1.04), (8, "adaptive", "adaptive", 1.06),
                              (8, "oracle", "oracle", 1.5), (64, "fixed-1", "fixed", 0.8)]])
    table = verdict.simulated_verdicts(sim, {"chat": {1}}, {"chat": 5.0})
    assert list(table["batch_size"]) == [8, 64]  # batch 1 was measured; the oracle is not deployable
    assert list(table["policy"]) == ["adaptive ngram", "fixed-1 ngram"]
    assert list(table["verdict"]) == [verdict.ENABLE, verdict.DISABLE]
    assert table["uncertainty_pct"].iloc[0] == pytest.approx(5.0 * 1.06)
