"""`specscope fit-cost`: fits, prints the terms, writes a loadable cost model, ends with a JSON line."""

import json
import subprocess
import sys

from specscope.costs.presets import load_cost_model


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "specscope", *map(str, args)], capture_output=True, text=True)


def test_fit_cost_writes_a_cost_model(tmp_path):
    profile = tmp_path / "profile.csv"
    rows = ["step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds"]
    for n in (1, 8, 64, 256):
        for kv in (0, 1000, 50_000):
            rows.append(f"verify,{n},{kv},0,{0.005 + 2e-5 * n + 4e-8 * kv:.10f}")
            rows.append(f"draft:eagle,0,{kv},{n},{0.002 + 1e-6 * n + 2e-9 * kv:.10f}")
    rows.append("overhead,0,0,0,0.0012")
    profile.write_text("\n".join(rows) + "\n")
    out = tmp_path / "mine.toml"
    result = run_cli("fit-cost", profile, "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["command"] == "fit-cost" and summary["name"] == "mine"
    assert summary["terms"]["target"]["mean_relative_error"] < 1e-6
    assert "draft:eagle" in result.stdout
    model = load_cost_model(out)
    assert abs(model.target.c_tok - 2e-5) < 1e-9 and abs(model.overhead - 0.0012) < 1e-12
    assert model.provenance["profile"] == str(profile)


def test_a_bad_profile_exits_2_without_output(tmp_path):
    profile = tmp_path / "profile.csv"
    profile.write_text("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\nverify,1,2,0,abc\n")
    out = tmp_path / "mine.toml"
    result = run_cli("fit-cost", profile, "-o", out, "--json")
    assert result.returncode == 2
    assert "profile.csv:2: seconds = 'abc' is not a number" in result.stderr
    assert not out.exists()


def test_an_output_folder_exits_2_before_fitting(tmp_path):
    result = run_cli("fit-cost", tmp_path / "missing.csv", "-o", tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == \
        f"specscope: error: -o {tmp_path}: is a folder; pass a file path such as {tmp_path / 'cost.toml'}"
