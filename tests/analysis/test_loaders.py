"""Loading a study folder: every part optional, broken files named in one clear error."""

import json

import numpy as np
import pytest

from specscope.analysis import loaders
from specscope.errors import SpecscopeError
from specscope.formats.trace import write_trace

from .conftest import build_study, make_trace, write_cell


def test_full_study_loads_every_part(study_dir):
    study = loaders.load_study(study_dir)
    assert len(study.runs) == 2 * 3 * 2  # workloads x methods x batch sizes
    assert len(study.requests) == 12 * 6
    assert [t.name for t in study.traces] == ["chat", "code-edit"]
    assert {"workload", "policy_kind", "k"} <= set(study.simulation.columns)
    assert study.notes == []
    none = study.runs[study.runs["method"] == "none"]
    assert (none["k"] == 0).all()
    assert study.runs["t_verify"].notna().all()


def test_request_mean_acc_len_is_committed_over_steps(tmp_path):
    cell = tmp_path / "runs" / "c"
    cell.mkdir(parents=True)
    (cell / "summary.json").write_text(json.dumps({"method": "ngram", "k": 3, "batch_size": 1,
                                                   "throughput_tok_s": 10.0, "workload": "chat"}))
    (cell / "requests.jsonl").write_text(json.dumps({"id": 7, "output_token_ids": [1] * 6,
                                                     "steps": {"proposed": [3, 3, 3], "accepted": [3, 0, 0]}}))
    runs, requests = loaders.load_runs(tmp_path / "runs")
    assert requests.loc[0, "mean_acc_len"] == pytest.approx((3 + 0 + 0 + 3) / 3)
    assert requests.loc[0, "id"] == "7"
    assert runs.loc[0, "cell"] == "c"


def test_unfinished_cell_is_skipped_with_a_note(tmp_path):
    rng = np.random.default_rng(0)
    write_cell(tmp_path / "runs", "chat", "none", 0, 1, rng)
    write_cell(tmp_path / "runs", "chat", "ngram", 3, 1, rng, summary=False)
    study = loaders.load_study(tmp_path)
    assert len(study.runs) == 1
    assert len(study.notes) == 1 and "chat-ngram-k3-b1" in study.notes[0]


def test_settings_may_sit_under_a_settings_key(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"settings": {"method": "draft", "k": 4, "batch_size": 2, "workload": "math"},
                                "throughput_tok_s": 5.0, "time_breakdown_s": {"draft": 1.0}}))
    row = loaders.read_summary(path)
    assert (row["method"], row["k"], row["batch_size"], row["workload"]) == ("draft", 4, 2, "math")
    assert row["t_draft"] == 1.0 and row["t_verify"] is None


def test_method_is_the_proposer_name_and_label_the_run_label(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"method": "draft(self:8)", "proposer": "draft", "k": 3, "batch_size": 1,
                                "throughput_tok_s": 5.0}))
    row = loaders.read_summary(path)
    assert (row["method"], row["label"]) == ("draft", "draft(self:8) k=3")
    path.write_text(json.dumps({"method": "none", "k": 3, "batch_size": 1, "throughput_tok_s": 5.0}))
    assert (loaders.read_summary(path)["k"], loaders.read_summary(path)["label"]) == (0, "none")


def test_failed_requests_are_left_out(tmp_path):
    cell = tmp_path / "runs" / "c"
    cell.mkdir(parents=True)
    (cell / "summary.json").write_text(json.dumps({"method": "none", "batch_size": 1, "throughput_tok_s": 1.0}))
    (cell / "requests.jsonl").write_text(
        json.dumps({"id": 1, "output_token_ids": [], "steps": {"proposed": [], "accepted": []}, "error": "oom"})
        + "\n" + json.dumps({"id": 2, "output_token_ids": [5], "steps": {"proposed": [0], "accepted": [0]}}) + "\n")
    _, requests = loaders.load_runs(tmp_path / "runs")
    assert requests["id"].tolist() == ["2"]


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    (json.dumps({"method": "ngram", "batch_size": 1}), "missing 'throughput_tok_s'"),
    (json.dumps([1, 2]), "expected a JSON object"),
])
def test_broken_summary_names_the_file(tmp_path, text, needle):
    cell = tmp_path / "runs" / "bad-cell"
    cell.mkdir(parents=True)
    (cell / "summary.json").write_text(text)
    with pytest.raises(SpecscopeError, match=needle) as err:
        loaders.load_study(tmp_path)
    assert "bad-cell" in str(err.value) and "\n" not in str(err.value)


def test_simulation_needs_its_columns(tmp_path):
    (tmp_path / "simulation.csv").write_text("trace,policy,speedup\nchat,oracle,1.5\n")
    with pytest.raises(SpecscopeError, match="missing column.*proposers.*batch_size"):
        loaders.load_study(tmp_path)


def test_simulation_policy_kind_k_and_workload(tmp_path):
    rng = np.random.default_rng(0)
    write_trace(tmp_path / "traces" / "t1.jsonl", make_trace("code-edit", rng, n_requests=3))
    (tmp_path / "simulation.csv").write_text(
        "trace,proposers,policy,batch_size,speedup\n"
        "traces/t1.jsonl,ngram,fixed-3,1,1.2\n"
        "traces/t1.jsonl,ngram,oracle,1,1.5\n"
        "traces/t1.jsonl,ngram+draft,oracle-combine,1,1.7\n"
        "other,ngram,adaptive,1,1.1\n")
    sim = loaders.load_study(tmp_path).simulation
    assert list(sim["policy_kind"]) == ["fixed", "oracle", "combine", "adaptive"]
    assert sim["k"].iloc[0] == 3 and np.isnan(sim["k"].iloc[1])
    assert list(sim["workload"]) == ["code-edit"] * 3 + ["other"]  # from the trace header, else the name
    assert sim["trace"].iloc[0] == "t1"


def test_traces_only_folder_in_specdecode_bench_format(tmp_path):
    (tmp_path / "traces").mkdir()
    lines = [{"prompt_token_ids": [1, 2], "generated_token_ids": [3, 4, 5],
              "acc_eagle": {"acc_len": [1, 2, 1]}, "acc_ngram": {"acc_len": [1, 1, 3]}}] * 2
    (tmp_path / "traces" / "sdb.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    study = loaders.load_study(tmp_path)
    assert study.runs.empty and study.simulation is None and not study.is_empty
    assert study.traces[0].proposers == ["eagle", "ngram"]
    assert loaders.trace_workload(study.traces[0]) == "sdb"


def test_missing_folder_and_bad_cost_model(tmp_path):
    with pytest.raises(SpecscopeError, match="does not exist"):
        loaders.load_study(tmp_path / "nope")
    build_study(tmp_path / "s", runs=False, traces=False)
    (tmp_path / "s" / "cost_model.toml").write_text("c_fixed = = 1")
    with pytest.raises(SpecscopeError, match="cost_model.toml: not valid TOML"):
        loaders.load_study(tmp_path / "s")
