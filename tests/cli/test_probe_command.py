"""`specscope probe -o`: writes a hardware TOML that `cost-model --hardware FILE` reads."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "specscope", *map(str, args)], capture_output=True, text=True)


def test_probe_writes_a_hardware_file_the_builder_reads(tmp_path):
    hw = tmp_path / "cpu.toml"
    result = run_cli("probe", "--threads", "1", "-o", hw, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "cpu" and summary["bandwidth_gbs"] > 0 and summary["flops_tflops"]["fp32"] > 0
    built = run_cli("cost-model", "--model", "smollm2-135m", "--hardware", hw, "-o", tmp_path / "c.toml")
    assert built.returncode == 0, built.stderr
    assert "(gguf) on 1 x local-cpu" in built.stdout  # the engine's default model is its GGUF on a CPU


def test_an_output_folder_is_refused_before_probing(tmp_path):
    result = run_cli("probe", "-o", tmp_path)
    assert result.returncode == 2 and "is a folder" in result.stderr
