"""Repeats and noise: verdicts only past the spread, the model's error beside each bound, busy machines flagged."""

import json
from pathlib import Path

import pandas as pd

from specscope.analysis import metrics, verdict
from specscope.analysis.loaders import load_study
from specscope.analysis.report import write_report


def write_repeat(runs: Path, name: str, method: str, k: int, repeat: int, throughput: float, busy=False) -> None:
    cell = runs / (name if repeat == 1 else f"{name}_r{repeat}")
    cell.mkdir(parents=True)
    (cell / "requests.jsonl").write_text(json.dumps({"id": "0", "output_token_ids": [1, 2, 3],
                                                     "steps": {"proposed": [k], "accepted": [0]}}) + "\n")
    (cell / "summary.json").write_text(json.dumps({
        "model": "tiny", "method": method, "proposer": method, "k": k, "batch_size": 4, "workload": "chat",
        "threads": 2, "device": "cpu", "partial": False, "generated_tokens": 100, "wall_seconds": 100 / throughput,
        "throughput_tok_s": throughput, "repeat": repeat,
        "contention": {"others_cpu": 0.6 if busy else 0.01, "busy": busy, "steal": 0.0, "load_avg": 1.0,
                       "cpus": 2, "threads": 2, "own_cpu": 1.9},
    }))


def close_study(root: Path) -> Path:
    """n-gram 1.01x and 0.98x in two repeats against plain decoding: it differs from `none` by less than its spread."""
    runs = root / "runs"
    for repeat, (plain, ngram) in enumerate([(20.0, 20.2), (21.0, 20.6)], start=1):
        write_repeat(runs, "chat_none_b4", "none", 0, repeat, plain)
        write_repeat(runs, "chat_ngram_k3_b4", "ngram", 3, repeat, ngram, busy=repeat == 2)
    return root


def test_speedups_pair_each_repeat_with_its_own_plain_run_and_fold_into_median_and_spread(tmp_path):
    cells = metrics.cells(load_study(close_study(tmp_path)).runs)
    ngram = cells[cells["method"] == "ngram"].iloc[0]
    assert ngram["repeats"] == 2 and bool(ngram["busy"])
    assert ngram["speedup"] == (20.2 / 20.0 + 20.6 / 21.0) / 2
    assert ngram["speedup_spread"] == (20.2 / 20.0 - 20.6 / 21.0) / 2
    assert ngram["cell"] == "chat_ngram_k3_b4"


def verdicts(root: Path) -> pd.DataFrame:
    study = load_study(root)
    return verdict.measured_verdicts(metrics.cells(study.runs), study.requests)


def test_the_verdict_says_no_measurable_difference_within_the_spread_of_the_repeats(tmp_path):
    study = close_study(tmp_path)
    cells = metrics.cells(load_study(study).runs)
    assert cells["throughput_rel_spread"].notna().all()  # the repeats feed the verdict's uncertainty
    row = verdicts(study).iloc[0]
    assert row["verdict"] == verdict.NO_DIFFERENCE and row["uncertainty_from"] == verdict.FROM_REPEATS
    assert row["label"] == "ngram k=3" and abs(row["gain_pct"]) < row["uncertainty_pct"]
    page = write_report(study).path.read_text()
    answer = page[page.index("<h2>Verdict</h2>"):page.index("<h2>Latency</h2>")]
    assert "no measurable difference" in answer
    assert "busy machine" in answer  # the second repeat ran while others took 60 % of the CPU


def test_a_method_that_clears_the_spread_is_enabled_and_one_that_loses_by_more_is_not(tmp_path):
    runs = tmp_path / "runs"
    for repeat, (plain, ngram) in enumerate([(20.0, 24.0), (20.0, 24.4)], start=1):
        write_repeat(runs, "chat_none_b4", "none", 0, repeat, plain)
        write_repeat(runs, "chat_ngram_k3_b4", "ngram", 3, repeat, ngram)
    row = verdicts(tmp_path).iloc[0]
    assert row["verdict"] == verdict.ENABLE and row["label"] == "ngram k=3"
    losing = tmp_path / "losing"
    for repeat, (plain, draft) in enumerate([(20.0, 15.0), (20.0, 15.2)], start=1):
        write_repeat(losing / "runs", "chat_none_b4", "none", 0, repeat, plain)
        write_repeat(losing / "runs", "chat_draft_k3_b4", "draft", 3, repeat, draft)
    assert verdicts(losing).iloc[0]["verdict"] == verdict.DISABLE


def test_a_gap_smaller_than_the_model_error_is_marked_within_it():
    table = pd.DataFrame({"workload": ["chat", "math"], "gap_pct": [3.0, 30.0], "bound_proposers": ["ngram", "ngram"]})
    fidelity = pd.DataFrame({"workload": ["chat", "chat", "math"], "error_pct": [4.0, -6.0, 2.0]})
    out = metrics._model_error(table, fidelity, {"target": 0.02, "draft:ngram": 0.03})
    assert list(out["fidelity_error_pct"]) == [5.0, 2.0] and list(out["fidelity_cells"]) == [2, 1]
    assert list(out["fit_error_pct"]) == [3.0, 3.0]
    assert list(out["within_error"]) == [True, False]


def test_the_fidelity_caption_sets_the_errors_against_the_measurements_own_spread():
    from specscope.analysis.sections.simulated import noise_floor

    table = pd.DataFrame({"error_pct": [2.0, -8.0, 12.0], "spread_pct": [3.0, 5.0, 13.0]})
    text = noise_floor(table)
    assert "±7.0% on average (±13.0% at most)" in text and "2 of 3 errors are within their cell's spread" in text
    assert noise_floor(table.assign(spread_pct=float("nan"))) == ""  # single runs: no spread to compare with
