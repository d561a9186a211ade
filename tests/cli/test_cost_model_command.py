"""`specscope cost-model` (build, show, calibrate, list): the user's path and its one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from specscope.costs.presets import load_cost_model

TRACE = Path(__file__).resolve().parents[2] / "benchmarks" / "traces" / "chat.jsonl"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "specscope", *map(str, args)], capture_output=True, text=True)


def test_hardware_you_do_not_have_gives_speedups(tmp_path):
    out = tmp_path / "c.toml"
    built = run_cli("cost-model", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "4", "-o", out, "--json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout.strip().splitlines()[-1])
    assert summary["drafts"]["draft"] == "llama-3.2-1b" and summary["memory"]["max_kv_tokens"] > 100_000
    assert "fits up to: batch" in built.stdout
    model = load_cost_model(out)
    assert model.target.form == "roofline" and model.max_kv_tokens == summary["memory"]["max_kv_tokens"]
    sim = run_cli("simulate", "--json", TRACE, "--cost-model", out, "--policies", "fixed-3", "oracle", "--batch-sizes", "1", "32")
    assert sim.returncode == 0, sim.stderr
    rows = json.loads(sim.stdout.strip().splitlines()[-1])["rows"]
    assert {r["proposers"] for r in rows} == {"ngram", "draft", "ngram,draft"}
    assert all(r["speedup"] > 0 for r in rows)
    assert "is analytic" in sim.stderr


def test_show_prints_and_writes_step_times_of_any_cost_model(tmp_path):
    csv = tmp_path / "t.csv"
    result = run_cli("cost-model", "show", "llama3.1-8b-h100", "--tokens", "1,64", "--kv", "0,8192", "-o", csv)
    assert result.returncode == 0, result.stderr
    assert "5.907" in result.stdout  # c_fixed + c_tok of the published preset, in ms
    lines = csv.read_text().splitlines()
    assert lines[0] == "tokens,kv,target_ms" and len(lines) == 5
    assert float(lines[1].split(",")[2]) == pytest.approx(5.907, abs=1e-3)


def test_a_model_that_does_not_fit_exits_2_without_output(tmp_path):
    out = tmp_path / "c.toml"
    result = run_cli("cost-model", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "-o", out)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.startswith("specscope: error: llama-3.1-70b bf16 on 1 x h100-sxm")
    assert "does not fit" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--model", "llama-9", "--hardware", "h100-sxm"], "Unknown model 'llama-9'. Available: deepseek-r1-distill"),
    (["--model", "llama-3.1-8b", "--hardware", "h900"], "Unknown hardware 'h900'. Available: a100-40gb"),
    (["--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--tp", "3"], "--tp 3 does not divide"),
    (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--dtype", "int3"], "Unknown dtype 'int3'"),
    (["--model", "llama-3.1-8b", "--hardware", "a100-80gb", "--dtype", "fp8"], "has no fp8 FLOP rate"),
    (["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "4"], "--batch and --context go together"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    out = tmp_path / "c.toml"
    result = run_cli("cost-model", *args, "-o", out)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_config_missing_fields_and_a_bad_hardware_file(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"hidden_size": 64}))
    result = run_cli("cost-model", "--model", cfg, "--hardware", "h100-sxm", "-o", tmp_path / "c.toml")
    assert result.returncode == 2 and "lacks intermediate_size, num_hidden_layers, num_attention_heads" in result.stderr
    hw = tmp_path / "gpu.toml"
    hw.write_text('kind = "gpu"\nmemory_gb = 80\nbandwidth_gbs = -1\n[flops_tflops]\nbf16 = 100\n')
    result = run_cli("cost-model", "--model", "llama-3.1-8b", "--hardware", hw, "-o", tmp_path / "c.toml")
    assert result.returncode == 2 and "bandwidth_gbs = -1 must be > 0" in result.stderr
    assert not (tmp_path / "c.toml").exists()


def test_calibrate_writes_a_hardware_file_the_builder_uses(tmp_path):
    hw = tmp_path / "h100-mine.toml"
    result = run_cli("cost-model", "calibrate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm",
                     "--against", "llama3.1-8b-h100", "-o", hw)
    assert result.returncode == 0, result.stderr
    assert "mean 0.0%" in result.stdout
    built = run_cli("cost-model", "--model", "llama-3.1-8b", "--hardware", hw, "-o", tmp_path / "c.toml", "--json")
    assert built.returncode == 0, built.stderr
    target_ms = json.loads(built.stdout.strip().splitlines()[-1])["target_ms"]
    assert target_ms["1,0"] == pytest.approx(5.907, abs=1e-3)


def test_list_names_models_and_hardware():
    result = run_cli("cost-model", "list")
    assert result.returncode == 0
    assert "llama-3.3-70b" in result.stdout and "mi300x" in result.stdout and "local" in result.stdout
