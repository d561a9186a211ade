"""Latency tables: TTFT, per-token and end-to-end latency per cell, changes against none, simulated latency."""

import numpy as np
import pandas as pd
import pytest

from specscope.analysis import latency


def test_per_token_latency_is_the_time_between_tokens_after_the_first():
    requests = pd.DataFrame({"output_len": [11, 11, 1], "latency_s": [2.0, 2.0, 0.5], "ttft_s": [1.0, np.nan, 0.5]})
    out = latency.per_request(requests)
    assert out["per_token_s"].iloc[0] == pytest.approx(0.1)  # (2.0 - 1.0) / 10
    assert out["per_token_s"].iloc[1] == pytest.approx(2.0 / 11)  # no TTFT: end-to-end per token
    assert np.isnan(out["per_token_s"].iloc[2])  # one token: no time between tokens
    assert list(out["per_token_from"]) == ["ttft", "end-to-end", "ttft"]


def _cells():
    runs = pd.DataFrame([{"cell": c, "model": "m", "workload": "chat", "method": m, "k": k, "label": lab,
                          "batch_size": 1, "tree": None, "throughput_tok_s": t}
                         for c, m, k, lab, t in [("a", "none", 0, "none", 10.0), ("b", "ngram", 3, "ngram k=3", 12.0)]])
    requests = pd.DataFrame([{"cell": c, "id": str(i), "output_len": 11, "ttft_s": 0.1,
                              "latency_s": 0.1 + 10 * per_token}
                             for c, per_tokens in [("a", [0.10, 0.12, 0.20]), ("b", [0.08, 0.09, 0.10])]
                             for i, per_token in enumerate(per_tokens)])
    return runs, requests


def test_cell_latency_percentiles_and_changes_against_none():
    runs, requests = _cells()
    cells = latency.cell_latency(requests, runs)
    assert list(cells["label"]) == ["none", "ngram k=3"]
    a = cells.iloc[0]
    assert a["per_token_s_p50"] == pytest.approx(0.12) and a["per_token_s_p90"] == pytest.approx(0.184)
    assert a["ttft_s_p50"] == pytest.approx(0.1) and a["has_ttft"] and a["requests"] == 3
    change = latency.latency_change(cells).set_index("cell")
    assert change.loc["b", "per_token_s_change_pct"] == pytest.approx(100 * (0.09 - 0.12) / 0.12)
    assert change.loc["b", "per_token_s_base"] == pytest.approx(0.12)
    assert change.loc["b", "ttft_s_change_pct"] == pytest.approx(0.0)


def test_no_latency_columns_no_rows():
    runs, requests = _cells()
    assert latency.cell_latency(requests.drop(columns=["latency_s"]).assign(latency_s=np.nan), runs).empty


def test_simulated_latency_takes_the_best_deployable_policy():
    sim = pd.DataFrame([
        {"workload": "chat", "mode": "serve", "batch_size": 4, "policy": p, "proposers": "ngram", "policy_kind": kind,
         "speedup": s, "sd_mean_latency_s": sd, "ar_mean_latency_s": 2.0}
        for p, kind, s, sd in [("fixed-3", "fixed", 1.2, 1.7), ("oracle", "oracle", 1.6, 1.2), ("fixed-1", "fixed", 1.1, 1.8)]])
    table = latency.simulated_latency(sim)
    assert len(table) == 1 and table["policy"].iloc[0] == "fixed-3 ngram"
    assert table["change_pct"].iloc[0] == pytest.approx(-15.0)
    assert latency.simulated_latency(sim.drop(columns=["sd_mean_latency_s"])).empty
