"""`specscope simulate` end to end: table, CSV, JSON line; bad input exits 2 with one line and no file."""

import csv
import json
import subprocess
import sys

import pytest

from specscope.cli.simulate import expand_list_options
from specscope.formats.simulation import COLUMNS
from specscope.simulator.synthetic import synthetic_trace
from specscope.formats.trace import write_trace


def run_cli(*args, preset: str | None = "llama3.1-8b-h100"):
    """`specscope ...`; a `simulate` without --cost-model gets `preset` (None: none, the verb's own default)."""
    args = list(map(str, args))
    if args[:1] == ["simulate"] and "--cost-model" not in args and preset is not None:
        args += ["--cost-model", preset]
    return subprocess.run([sys.executable, "-m", "specscope", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("traces") / "tiny.jsonl"
    write_trace(path, synthetic_trace(12, seed=3, prompt_range=(20, 80), output_range=(20, 80)))
    return path


def test_simulate_writes_the_csv_and_ends_with_a_json_line(trace_file, tmp_path):
    out = tmp_path / "results.csv"
    result = run_cli("simulate", "--json", trace_file, "--proposers", "eagle", "ngram", "ngram,eagle",
                     "--policies", "fixed-1", "fixed-3", "oracle", "--batch-sizes", "1", "8", "--mode", "paper",
                     "--ngram-match-prob", "0.5", "-o", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == (3 + 3 + 1) * 2
    assert list(rows[0]) == COLUMNS
    assert {r["mode"] for r in rows} == {"paper"}
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["command"] == "simulate" and summary["configs"] == 14 and summary["output"] == str(out)
    assert {(r["proposers"], r["policy"], r["batch_size"]) for r in summary["rows"]} == \
        {(r["proposers"], r["policy"], int(r["batch_size"])) for r in rows}
    assert "Speedup vs plain decoding" in result.stdout
    assert "skipped fixed-1 for ngram,eagle" in result.stderr


@pytest.mark.parametrize("args,message", [
    (["--proposers", "medusa"], "no acc_len for proposer 'medusa'. Present: ngram, eagle"),
    (["--cost-model", "nope"], "Unknown cost model 'nope'. Available: "),
    (["--policies", "fixed-1", "greedy"], "Unknown policy 'greedy'"),
    (["--mode", "fast"], "Unknown mode 'fast'"),
    (["--batch-sizes", "1", "x"], "--batch-sizes: 'x' is not an integer"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(trace_file, tmp_path, args, message):
    out = tmp_path / "results.csv"
    result = run_cli("simulate", trace_file, *args, "-o", out)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_output_folder_is_refused_before_simulating(trace_file, tmp_path):
    result = run_cli("simulate", trace_file, "--proposers", "ngram", "--policies", "adaptive", "-o", tmp_path)
    assert result.returncode == 2 and "is a folder; pass a file path such as" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and list(tmp_path.iterdir()) == []


def test_a_malformed_trace_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"specscope_trace": 1, "proposers": ["eagle"]}\n{"id": 1, "prompt_token_ids": [1],\n')
    out = tmp_path / "r.csv"
    result = run_cli("simulate", bad, "-o", out)
    assert result.returncode == 2
    assert f"specscope: error: {bad}:2: not valid JSON" in result.stderr
    assert not out.exists()


def test_list_options_take_several_values_after_one_flag(tmp_path):
    existing = tmp_path / "t.jsonl"
    existing.write_text("")
    assert expand_list_options(["a.jsonl", "--policies", "fixed-1", "oracle", "-o", "x.csv"]) == \
        ["a.jsonl", "--policies", "fixed-1", "--policies", "oracle", "-o", "x.csv"]
    assert expand_list_options(["--batch-sizes", "1", "8", "--seed", "3", "b.jsonl"]) == \
        ["--batch-sizes", "1", "--batch-sizes", "8", "--seed", "3", "b.jsonl"]
    assert expand_list_options(["--policies", "oracle", str(existing)]) == ["--policies", "oracle", str(existing)]
    assert expand_list_options(["--policies=oracle", "fixed-2"]) == ["--policies=oracle", "--policies", "fixed-2"]


def test_bad_cost_file_and_empty_trace_exit_2_without_output(trace_file, tmp_path):
    costs = tmp_path / "neg.toml"
    costs.write_text("[target]\nc_fixed = 0.01\nc_tok = -1e-5\nc_kv = 0\n[overhead]\nper_step = 0.001\n")
    out = tmp_path / "r.csv"
    result = run_cli("simulate", trace_file, "--cost-model", costs, "-o", out)
    assert result.returncode == 2
    assert "neg.toml: [target] c_tok = -1e-05 is negative" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_cli("simulate", empty, "-o", out)
    assert result.returncode == 2
    assert f"{empty}: the file is empty" in result.stderr
    assert not out.exists()


def test_specdecode_bench_file_in_paper_mode(tmp_path):
    path = tmp_path / "combined_cnn.jsonl"
    lines = []
    for i in range(4):
        acc = [1, 3, 2, 1, 1, 4, 3, 2, 1, 1]
        back = [1, 1, 2, 3, 4, 1, 1, 2, 1, 1]  # a step at i commits at most the 10 - i positions left
        lines.append(json.dumps({"id": str(i), "prompt_token_ids": list(range(20 + i)),
                                 "generated_token_ids": list(range(10)),
                                 "acc_eagle": {"acc_len": acc}, "acc_ngram": {"acc_len": back}}))
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("simulate", "--json", path, "--policies", "fixed-2", "oracle", "--batch-sizes", "1", "4",
                     "--mode", "paper", "--trace-format", "specdecode-bench")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["output"] is None and summary["configs"] == (2 + 2 + 1) * 2
    assert "p = 0.4" in result.stderr  # the published n-gram match probability for cnn


@pytest.mark.parametrize("mode", ["serve", "paper"])
def test_simulate_runs_the_adaptive_policies_with_gap_recovered(trace_file, tmp_path, mode):
    out = tmp_path / "adaptive.csv"
    result = run_cli("simulate", trace_file, "--proposers", "eagle", "ngram,eagle", "--policies", "fixed-1", "fixed-3",
                     "oracle", "adaptive", "adaptive-combine", "--batch-sizes", "1", "8", "--mode", mode, "-o", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    got = {(r["proposers"], r["policy"]) for r in rows}
    assert ("eagle", "adaptive") in got and ("ngram,eagle", "adaptive-combine") in got
    assert ("ngram,eagle", "adaptive") not in got  # adaptive takes one proposer; noted on stderr
    assert "skipped adaptive for ngram,eagle" in result.stderr
    for r in rows:
        if r["policy"] in ("adaptive", "adaptive-combine", "oracle"):
            assert r["gap_recovered"] != ""
    assert all(float(r["gap_recovered"]) == 1.0 for r in rows if r["policy"] == "oracle")


def test_without_a_cost_model_a_bare_trace_exits_2_naming_the_presets(trace_file, tmp_path):
    out = tmp_path / "r.csv"
    result = run_cli("simulate", trace_file, "-o", out, preset=None)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "no --cost-model given" in result.stderr
    assert "llama3.1-8b-h100" in result.stderr and "smollm2-135m-cpu" in result.stderr
    assert not out.exists()


def test_without_a_cost_model_a_study_trace_is_priced_with_the_study_fit(tmp_path):
    study = tmp_path / "study"
    (study / "traces").mkdir(parents=True)
    trace = study / "traces" / "chat.jsonl"
    write_trace(trace, synthetic_trace(6, seed=5, prompt_range=(20, 40), output_range=(20, 40)))
    fitted = ("name = \"fitted\"\n[provenance]\nmodel = \"another-model\"\n"
              "[target]\nc_fixed = 0.01\nc_tok = 1e-4\nc_kv = 1e-7\n[overhead]\nper_step = 0.001\n"
              "[draft.eagle]\nc_fixed = 0.002\nc_tok = 1e-5\nc_kv = 0\n"
              "[draft.ngram]\nform = \"verify_fraction\"\nfraction = 0.01\n")
    (study / "cost_model.toml").write_text(fitted)
    out = tmp_path / "r.csv"
    result = run_cli("simulate", trace, "--policies", "fixed-1", "--batch-sizes", "1", "-o", out, preset=None)
    assert result.returncode == 0, result.stderr
    assert {r["cost_model"] for r in csv.DictReader(out.open())} == {"fitted"}
    assert "study folder's fitted cost model" in result.stderr
    assert "of another model" in result.stderr  # the trace's model is not the one the cost model prices


def test_batch_sizes_beyond_the_trace_are_resampled_and_marked(tmp_path):
    trace = tmp_path / "four.jsonl"
    write_trace(trace, synthetic_trace(4, seed=2, prompt_range=(20, 40), output_range=(20, 40)))
    out = tmp_path / "r.csv"
    result = run_cli("simulate", trace, "--proposers", "eagle", "--policies", "oracle", "--batch-sizes", "4", "64",
                     "-o", out)
    assert result.returncode == 0, result.stderr
    rows = {int(r["batch_size"]): r for r in csv.DictReader(out.open())}
    assert rows[4]["requests"] == rows[4]["distinct_requests"] == "4"
    assert rows[64]["distinct_requests"] == "4" and rows[64]["requests"] == "256"  # max(4 x 64, 4)
    assert rows[64]["speedup"] != rows[4]["speedup"]
    assert "resampled" in result.stderr and "*" in result.stdout
