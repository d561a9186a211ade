"""The engine verbs end to end on a tiny model folder: run, trace, profile; their errors; Ctrl-C."""

import json
import subprocess
import sys

import pytest

from cli_helpers import cli
from sd_helpers import repetitive_prompt_file, save_tiny_model_folder


def test_bad_input_is_one_line_and_exit_2_from_the_real_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "specscope", "run", "--k", "-1", "--method", "ngram", "-o", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("specscope: error: --k -1") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "model": save_tiny_model_folder(root / "model", seed=0, word_seed=1),
        "other": save_tiny_model_folder(root / "other", seed=1, word_seed=7),
        "prompts": repetitive_prompt_file(root / "prompts.jsonl", long_one=True),
    }


def run_args(tiny, out, *extra):
    return ["run", "--json", "--model", tiny["model"], "--workload", tiny["prompts"], "--max-new-tokens", 12, "-o", out, *extra]


@pytest.fixture(scope="module")
def plain_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    result = cli(*run_args(tiny, out, "--method", "none", "--batch-size", 3))
    assert result.returncode == 0, result.stderr
    return out, result


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_run_writes_records_summary_and_json_line(plain_run):
    out, result = plain_run
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == json.load(open(out / "summary.json"))
    for key in ("generated_tokens", "wall_seconds", "throughput_tok_s", "mean_acc_len", "acceptance_rate",
                "time_breakdown_s", "peak_rss_mb", "model", "method", "k", "batch_size", "workload", "threads",
                "device", "partial"):
        assert key in summary
    assert summary["partial"] is False and summary["method"] == "none" and summary["mean_acc_len"] == 1.0
    assert set(summary["time_breakdown_s"]) == {"draft", "verify", "sample", "overhead"}
    assert summary["decode_throughput_tok_s"] > 0
    records = {r["id"]: r for r in read_jsonl(out / "requests.jsonl")}
    assert len(records) == 7 and summary["num_errors"] == 1
    assert "exceeds the model's context" in records["too-long"]["error"]  # reported alone; the others completed
    ok = [r for r in records.values() if "error" not in r]
    assert all(len(r["output_token_ids"]) == 12 or r["finish_reason"] == "stop" for r in ok)
    assert all(isinstance(r["output_text"], str) and "bleu4_prompt_overlap" in r for r in ok)
    assert summary["generated_tokens"] == sum(len(r["output_token_ids"]) for r in ok)


@pytest.mark.parametrize("extra", [["--method", "ngram", "--k", 3, "--ngram-min", 2], ["--method", "draft", "--draft-model", "self:2"]])
def test_greedy_sd_run_matches_plain_run(tiny, plain_run, tmp_path, extra):
    result = cli(*run_args(tiny, tmp_path, "--batch-size", 4, *extra))
    assert result.returncode == 0, result.stderr
    plain = {r["id"]: r["output_token_ids"] for r in read_jsonl(plain_run[0] / "requests.jsonl")}
    records = read_jsonl(tmp_path / "requests.jsonl")
    assert all(r["output_token_ids"] == plain[r["id"]] for r in records)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["proposed_tokens"] > 0
    assert summary["label"] == ("ngram" if extra[1] == "ngram" else "draft(self:2)")


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--k", -1, "--method", "ngram"], "--k -1"),
        (["--method", "bogus"], "Unknown method 'bogus'. Available: draft, eagle, eagle3, mtp, ngram, none"),
        (["--method", "draft", "--draft-model", "self:3"], "self-draft needs 1 <= L < 3"),
        (["--method", "ngram", "--ngram-min", 5, "--ngram-max", 3], "--ngram-min 5"),
        (["--temperature", -1], "--temperature"),
    ],
)
def test_run_bad_input_exits_2_without_output(tiny, tmp_path, extra, message):
    out = tmp_path / "out"
    result = cli(*run_args(tiny, out, *extra))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (out / "requests.jsonl").exists() and not (out / "summary.json").exists()


def test_draft_with_other_tokenizer_is_rejected(tiny, tmp_path):
    result = cli(*run_args(tiny, tmp_path / "out", "--method", "draft", "--draft-model", tiny["other"]))
    assert result.returncode == 2 and "different tokenizer" in result.stderr
    assert not (tmp_path / "out" / "requests.jsonl").exists()


def test_separate_draft_model_run(tiny, plain_run, tmp_path):
    # the same folder as a separate draft: every draft is accepted (until a request's last, clipped step)
    result = cli(*run_args(tiny, tmp_path, "--method", "draft", "--draft-model", tiny["model"], "--k", 4))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["proposer_mb"] > 0 and summary["label"] == f"draft({tiny['model']})"
    plain = {r["id"]: r["output_token_ids"] for r in read_jsonl(plain_run[0] / "requests.jsonl")}
    for r in read_jsonl(tmp_path / "requests.jsonl"):
        if "error" not in r:
            assert r["output_token_ids"] == plain[r["id"]]
            assert r["steps"]["proposed"][:-1] == r["steps"]["accepted"][:-1] == [4] * (len(r["steps"]["proposed"]) - 1)


def test_ctrl_c_keeps_finished_requests_and_marks_partial(tiny, tmp_path, monkeypatch):
    from specscope.engine.engine import Engine

    real_step, calls = Engine.step, {"n": 0}

    def interrupted_step(self):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(Engine, "step", interrupted_step)
    result = cli(*run_args(tiny, tmp_path, "--method", "ngram"))
    assert result.returncode == 130
    summary = json.load(open(tmp_path / "summary.json"))
    records = read_jsonl(tmp_path / "requests.jsonl")
    assert summary["partial"] is True and 0 < len(records) < 7
    assert summary["num_requests"] == len(records)


def test_trace_equals_plain_and_is_readable(tiny, plain_run, tmp_path):
    from specscope.formats.trace import read_trace

    path = tmp_path / "t.jsonl"
    result = cli("trace", "--json", "--model", tiny["model"], "--workload", tiny["prompts"], "--max-new-tokens", 12,
                 "--proposers", "ngram,draft", "--draft-model", "self:2", "--k-max", 8, "--batch-size", 4, "-o", path)
    assert result.returncode == 0, result.stderr
    trace = read_trace(path)
    assert trace.proposers == ["ngram", "draft"] and trace.k_max == 8
    assert trace.header()["proposer_labels"] == {"ngram": "ngram", "draft": "draft(self:2)"}
    plain = {r["id"]: r["output_token_ids"] for r in read_jsonl(plain_run[0] / "requests.jsonl")}
    assert len(trace.requests) == 6  # the over-long prompt is reported, not traced
    for req in trace.requests:
        assert req.output_token_ids == plain[req.id]
        assert all(len(v) == len(req.output_token_ids) and v.min() >= 1 for v in req.acc_len.values())
    assert json.loads(result.stdout.strip().splitlines()[-1])["num_errors"] == 1


def test_trace_bad_input(tiny, tmp_path):
    result = cli("trace", "--model", tiny["model"], "--workload", tiny["prompts"], "--proposers", "ngram,medusa", "-o", tmp_path / "t")
    assert result.returncode == 2 and "Unknown method 'medusa'" in result.stderr
    result = cli("trace", "--model", tiny["model"], "--workload", tiny["prompts"], "--k-max", 0, "-o", tmp_path / "t")
    assert result.returncode == 2 and "--k-max" in result.stderr
    assert not (tmp_path / "t").exists()


def test_profile_csv_fits(tiny, tmp_path):
    from specscope.formats.profile import read_profile

    path = tmp_path / "p.csv"
    result = cli("profile", "--model", tiny["model"], "--draft-model", "self:2", "--batch-sizes", "1,2",
                 "--ks", "0,2", "--contexts", "16", "--reps", 2, "-o", path)
    assert result.returncode == 0, result.stderr
    data = read_profile(path)
    kinds = list(data["step_kind"])
    assert {"decode", "verify", "prefill", "draft:ngram", "draft:draft", "catch_up:draft", "sample", "overhead"} <= set(kinds)
    # two rounds, one row per configuration (the median of its rounds): B 1, 2 x k 0, 2 x context 16
    assert kinds.count("decode") + kinds.count("verify") == 4 and kinds.count("catch_up:draft") == 2
    assert "decision" in kinds  # the adaptive policy's own time per step, from a short `--k adaptive` run
    assert set(data["proposer"][data["step_kind"] != "decision"]) == {"", "ngram", "draft"}  # plain and SD steps
    assert set(data["proposer"][data["step_kind"] == "decision"]) == {"adaptive(ngram)"}
    assert data["identity"]["hardware"] and data["batch_size"] is not None
    fit = cli("fit-cost", "--json", path, "-o", tmp_path / "c.toml")
    assert fit.returncode == 0, fit.stderr
    terms = json.loads(fit.stdout.strip().splitlines()[-1])["terms"]
    assert {"target", "draft:draft", "draft:ngram"} <= set(terms) and "held_out_mean_relative_error" in terms["target"]
    assert "held-out" in fit.stdout
    from specscope.costs.presets import read_cost_model

    costs = read_cost_model(tmp_path / "c.toml")
    assert costs.target.form == "surface" and costs.drafts["draft"].form == "chain"
    assert "catch_up:draft" in terms and costs.drafts["draft"].c_catch_up >= 0
    assert "decision" in terms and costs.decision + costs.decision_per_sequence > 0
    result = cli("profile", "--model", tiny["model"], "--ks", "x", "-o", path)
    assert result.returncode == 2 and "--ks" in result.stderr
