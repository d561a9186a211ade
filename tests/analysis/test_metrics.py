"""The study's metrics on small tables whose answers are worked out by hand."""

import numpy as np
import pandas as pd
import pytest

from specscope.analysis import loaders, metrics
from specscope.formats.trace import RequestTrace, Trace

from .conftest import make_trace


def _runs(rows):
    base = {"model": "m", "workload": "chat", "k": 3, "generated_tokens": 100, "peak_rss_mb": 500.0,
            "t_draft": 0.0, "t_verify": 1.0, "t_sample": 0.5, "t_overhead": 0.5}
    table = pd.DataFrame([{**base, **row} for row in rows])
    table["label"] = [loaders.method_label(m, k) for m, k in zip(table["method"], table["k"])]
    return table


def _trace(acc_by_request: list[dict], proposers=("ngram", "draft")) -> Trace:
    requests = [RequestTrace(str(i), [1, 2, 3], list(range(len(next(iter(acc.values()))))),
                             {p: np.array(v) for p, v in acc.items()}, "chat")
                for i, acc in enumerate(acc_by_request)]
    return Trace(requests, list(proposers), model="m", k_max=4, workload="chat")


def test_speedup_is_relative_to_none_of_the_same_workload_and_batch():
    runs = _runs([
        {"method": "none", "k": 0, "batch_size": 1, "throughput_tok_s": 10.0},
        {"method": "ngram", "batch_size": 1, "throughput_tok_s": 15.0},
        {"method": "none", "k": 0, "batch_size": 4, "throughput_tok_s": 30.0},
        {"method": "ngram", "batch_size": 4, "throughput_tok_s": 27.0},
        {"method": "ngram", "batch_size": 8, "throughput_tok_s": 50.0},  # no baseline measured
    ])
    out = metrics.with_speedup(runs)
    assert list(out["speedup"].iloc[:4]) == pytest.approx([1.0, 1.5, 1.0, 0.9])
    assert np.isnan(out["speedup"].iloc[4])


def test_time_per_token_and_memory_overhead():
    runs = _runs([
        {"method": "none", "k": 0, "batch_size": 1, "throughput_tok_s": 10.0},
        {"method": "draft", "batch_size": 1, "throughput_tok_s": 12.0, "peak_rss_mb": 600.0, "t_draft": 0.2},
    ])
    per_token = metrics.time_per_token(runs)
    assert per_token.loc[1, "ms_draft"] == pytest.approx(2.0)  # 0.2 s over 100 tokens
    assert per_token.loc[0, "ms_verify"] == pytest.approx(10.0)
    memory = metrics.memory_overhead(runs)
    assert memory.loc[1, "extra_mb"] == pytest.approx(100.0)
    assert memory.loc[1, "extra_pct"] == pytest.approx(20.0)


def test_oracle_walk_commits_acc_len_per_step():
    # steps start at 0 (+1), 1 (+3), 4 (+2): 6 tokens in 3 steps
    assert metrics.oracle_tokens_per_step(np.array([1, 3, 9, 9, 2, 9])) == pytest.approx(2.0)
    assert metrics.oracle_tokens_per_step(np.array([1, 1, 1])) == pytest.approx(1.0)


def test_acc_len_matrix_sorts_longest_first_and_pads():
    trace = _trace([{"ngram": [1, 2], "draft": [1, 1]}, {"ngram": [1, 3, 4], "draft": [1, 1, 1]}])
    matrix = metrics.acc_len_matrix(trace, "ngram")
    assert matrix[0].tolist() == [1, 3, 4]
    assert matrix[1, :2].tolist() == [1, 2] and np.isnan(matrix[1, 2])
    assert metrics.acc_len_matrix(trace, "ngram", max_positions=2).shape == (2, 2)


def test_length_groups_split_counts_and_merge_ties():
    assert metrics.length_groups(np.array([10, 20, 30, 40, 50, 60]), 3) == [(10, 20), (30, 40), (50, 60)]
    assert metrics.length_groups(np.array([5, 5, 5, 9]), 3) == [(5, 5), (9, 9)]


def test_mean_acc_by_position_per_length_group():
    trace = _trace([{"ngram": [1, 3], "draft": [1, 1]}, {"ngram": [1, 5], "draft": [1, 1]},
                    {"ngram": [1, 2, 2, 2], "draft": [1, 1, 1, 1]}])
    table = metrics.mean_acc_by_position(trace, "ngram", n_groups=2)
    short = table[table["group"].str.startswith("2-2")]
    assert short["mean_acc_len"].tolist() == [1.0, 4.0]
    assert short["requests"].tolist() == [2, 2]
    assert len(table[table["group"].str.startswith("4-4")]) == 4


def test_position_difference_and_win_shares():
    trace = _trace([{"ngram": [1, 3, 1], "draft": [1, 1, 2]}, {"ngram": [1, 1], "draft": [1, 2]}])
    table = metrics.position_difference(trace, "ngram", "draft")
    assert table["mean_diff"].tolist() == pytest.approx([0.0, 0.5])  # position 2: one request, too few
    assert table["a_wins"].tolist() == pytest.approx([0.0, 0.5])
    assert table["b_wins"].tolist() == pytest.approx([0.0, 0.5])
    assert table["requests"].tolist() == [2, 2]


def test_per_position_tails_with_few_requests_are_cut():
    trace = _trace([{"ngram": [1] * 10, "draft": [1] * 10}] * 9 + [{"ngram": [1] * 50, "draft": [2] * 50}])
    assert metrics.position_difference(trace, "ngram", "draft")["position"].max() == 9
    groups = metrics.mean_acc_by_position(trace, "ngram", n_groups=1)
    assert groups["position"].max() == 9 and (groups["requests"] >= 3).all()


def test_proposer_pair_puts_ngram_first():
    assert metrics.proposer_pair(["eagle", "ngram"]) == ("ngram", "eagle")
    assert metrics.proposer_pair(["draft", "eagle"]) == ("draft", "eagle")
    assert metrics.proposer_pair(["eagle"]) is None


def test_token_bleu4_bounds():
    assert metrics.token_bleu4([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert metrics.token_bleu4([1, 2, 3], [7, 8, 9]) == 0.0
    assert metrics.token_bleu4([1, 2], []) == 0.0
    assert 0 < metrics.token_bleu4([1, 2, 3, 4, 5, 6], [1, 2, 3, 9]) < 1


def test_token_bleu4_matches_sacrebleu_on_space_joined_ids():
    bleu = pytest.importorskip("sacrebleu.metrics").BLEU(
        tokenize="13a", smooth_method="exp", lowercase=False, effective_order=True)
    rng = np.random.default_rng(1)
    for _ in range(30):
        ref = rng.integers(0, 12, size=int(rng.integers(1, 30))).tolist()
        hyp = rng.integers(0, 12, size=int(rng.integers(1, 30))).tolist()
        expected = bleu.sentence_score(" ".join(map(str, hyp)), [" ".join(map(str, ref))]).score / 100
        assert metrics.token_bleu4(ref, hyp) == pytest.approx(min(1.0, expected), abs=1e-9)


def test_bleu_bins_favour_ngram_on_copying_outputs():
    trace = make_trace("code-edit", np.random.default_rng(0), n_requests=40)
    per_request, per_bin = metrics.bleu_bins(metrics.trace_requests([trace]), "ngram", "draft")
    assert len(per_request) == 40 and per_bin["requests"].sum() == 40
    low = per_request[per_request["bleu4"] < 0.2]["ratio"].mean()
    high = per_request[per_request["bleu4"] > 0.6]["ratio"].mean()
    assert high > 1 > low


def test_recommendation_picks_best_measured_and_gap_to_oracle_bound():
    runs = metrics.with_speedup(_runs([
        {"method": "none", "k": 0, "batch_size": 1, "throughput_tok_s": 10.0},
        {"method": "ngram", "batch_size": 1, "throughput_tok_s": 15.0},
        {"method": "draft", "batch_size": 1, "throughput_tok_s": 12.0},
        {"method": "none", "k": 0, "batch_size": 8, "throughput_tok_s": 40.0},
        {"method": "ngram", "batch_size": 8, "throughput_tok_s": 36.0},
    ]))
    sim = pd.DataFrame({
        "trace": "t", "workload": "chat", "proposers": ["ngram", "ngram", "ngram,draft", "ngram"],
        "policy": ["fixed-3", "oracle", "oracle", "oracle"], "batch_size": [1, 1, 1, 8],
        "speedup": [1.4, 1.8, 2.0, 1.1],
    })
    sim = loaders.derive_simulation_columns(sim)
    table = metrics.recommendations(runs, sim)
    b1, b8 = table.iloc[0], table.iloc[1]
    assert (b1["method"], b1["speedup"], b1["oracle_speedup"]) == ("ngram", pytest.approx(1.5), 2.0)
    assert b1["gap_pct"] == pytest.approx(25.0) and b1["bound_from"] == "combine (ngram,draft)"
    assert b8["method"] == "none" and b8["gap_pct"] == pytest.approx(100 * 0.1 / 1.1)
    assert metrics.recommendations(runs, None)["oracle_speedup"].isna().all()


def test_fidelity_matches_cells_to_fixed_k_rows():
    runs = metrics.with_speedup(_runs([
        {"method": "none", "k": 0, "batch_size": 1, "throughput_tok_s": 10.0},
        {"method": "ngram", "batch_size": 1, "throughput_tok_s": 15.0},
        {"method": "draft", "batch_size": 1, "throughput_tok_s": 12.0},  # not simulated
    ]))
    sim = pd.DataFrame({"trace": ["a", "b", "a", "a"], "workload": "chat", "proposers": "ngram",
                        "policy": ["fixed-3", "fixed-3", "fixed-5", "oracle"],
                        "batch_size": 1, "speedup": [1.6, 1.8, 9.0, 9.0]})
    sim = loaders.derive_simulation_columns(sim)
    table = metrics.fidelity(runs, sim)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["method"], row["measured"], row["predicted"]) == ("ngram", pytest.approx(1.5), pytest.approx(1.7))
    assert row["error_pct"] == pytest.approx(100 * 0.2 / 1.5)


def test_fidelity_matches_adaptive_cells_to_adaptive_rows_of_the_same_proposers():
    runs = metrics.with_speedup(_runs([
        {"method": "none", "k": 0, "batch_size": 1, "throughput_tok_s": 10.0},
        {"method": "adaptive(ngram)", "k": float("nan"), "batch_size": 1, "throughput_tok_s": 14.0},
        {"method": "adaptive(ngram,draft)", "k": float("nan"), "batch_size": 1, "throughput_tok_s": 16.0},
    ]))
    sim = pd.DataFrame({"trace": "a", "workload": "chat", "proposers": ["ngram", "ngram", "ngram,draft", "ngram"],
                        "policy": ["adaptive", "fixed-8", "adaptive-combine", "oracle"],
                        "batch_size": 1, "speedup": [1.3, 9.0, 1.5, 9.0]})
    table = metrics.fidelity(runs, loaders.derive_simulation_columns(sim)).set_index("method")
    assert sorted(table.index) == ["adaptive(ngram)", "adaptive(ngram,draft)"]  # never the fixed k = 8 row
    assert table.loc["adaptive(ngram)", "predicted"] == pytest.approx(1.3)
    assert table.loc["adaptive(ngram,draft)", "measured"] == pytest.approx(1.6)
    assert table.loc["adaptive(ngram,draft)", "predicted"] == pytest.approx(1.5)


def test_oracle_comparison_needs_combine_rows():
    sim = pd.DataFrame({"trace": "t", "workload": "w", "proposers": ["ngram", "draft", "ngram,draft", "ngram"],
                        "policy": ["oracle", "oracle", "oracle", "fixed-3"], "batch_size": 1,
                        "speedup": [1.5, 1.4, 1.9, 1.2]})
    sim = loaders.derive_simulation_columns(sim)
    table = metrics.oracle_comparison(sim)
    assert sorted(table["series"]) == ["combine ngram,draft", "oracle draft", "oracle ngram"]
    assert metrics.oracle_comparison(sim[sim["policy_kind"] != "combine"]).empty
