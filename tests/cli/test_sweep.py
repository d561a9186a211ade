"""`specscope sweep` end to end on a tiny random model: outputs, resume, changed settings, Ctrl-C, bad configs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from sd_helpers import repetitive_prompt_file, save_tiny_model_folder  # noqa: E402

CONFIG = """
model = "model"
workloads = ["prompts.jsonl"]
methods = ["none", "ngram"]
k = [{k}]
batch_sizes = [1, 2]
num_prompts = 4
max_new_tokens = 8

[trace]
k_max = 4
num_prompts = 4

[profile]
batch_sizes = [1, 2]
ks = [0, 2]
contexts = [16]
reps = 1

[simulate]
policies = ["fixed-2", "oracle"]
batch_sizes = [1, 4]
"""
CELLS = ["prompts_none_b1", "prompts_ngram_k{k}_b1", "prompts_none_b2", "prompts_ngram_k{k}_b2"]


def sweep(*args):
    """Run the verb in-process; returns (exit code, last JSON line or None, stderr-ish text)."""
    from specscope.cli import app
    from specscope.errors import SpecscopeError

    result = CliRunner().invoke(app, ["sweep", "--json", *[str(a) for a in args]])
    if isinstance(result.exception, SpecscopeError):
        return 2, None, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    lines = result.stdout.strip().splitlines()
    last = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return result.exit_code, last, result.output


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    save_tiny_model_folder(root / "model")
    repetitive_prompt_file(root / "prompts.jsonl")
    return root


def write_config(root, k=2, **replace):
    text = CONFIG.format(k=k)
    for old, new in replace.items():
        text = text.replace(old, new)
    (root / "sweep.toml").write_text(text)
    return root / "sweep.toml"


@pytest.fixture(scope="module")
def first_run(tiny):
    out = tiny / "study"
    code, result, text = sweep(write_config(tiny), "-o", out)
    assert code == 0, text
    return out, result


def test_sweep_writes_cells_traces_profile_cost_model_simulation_and_report(first_run):
    out, result = first_run
    assert sorted(result["ran"]) == sorted([c.format(k=2) for c in CELLS] + ["trace-prompts", "profile"])
    for name in CELLS:
        cell = out / "runs" / name.format(k=2)
        summary = json.loads((cell / "summary.json").read_text())
        assert (cell / "requests.jsonl").is_file() and json.loads((cell / "cell.json").read_text())["method"] in ("none", "ngram")
        assert summary["partial"] is False and summary["peak_rss_mb"] > 0
    for path in ("traces/prompts.jsonl", "profile.csv", "cost_model.toml", "simulation.csv", "twins.csv",
                 "report.html", "sweep/config.toml"):
        assert (out / path).is_file(), path
    assert result["twins"] == 2  # each n-gram cell's twin (its own requests); `none` is the denominator
    assert "contention" in json.loads((out / "runs" / CELLS[0] / "summary.json").read_text())
    assert result["report"] == str(out / "report.html") and result["figures"] > 0
    assert not any((out / "sweep" / "tmp").iterdir()) if (out / "sweep" / "tmp").exists() else True


def test_running_again_skips_every_finished_step(tiny, first_run):
    out, _ = first_run
    code, result, _ = sweep(write_config(tiny), "-o", out)
    assert code == 0 and result["ran"] == [] and result["skipped"] == 6
    assert (out / "report.html").is_file()


def test_a_changed_setting_reruns_only_the_cells_it_changes(tiny, first_run, tmp_path):
    out, _ = first_run
    code, result, _ = sweep(write_config(tiny, k=3), "-o", out, "--dry-run")
    assert code == 0 and result["dry_run"] and result["steps"]["prompts_none_b1"] == "done"
    code, result, _ = sweep(write_config(tiny, k=3), "-o", out)
    assert code == 0
    assert sorted(result["ran"]) == ["prompts_ngram_k3_b1", "prompts_ngram_k3_b2"]  # new cells; none cells reused
    code, result, _ = sweep(write_config(tiny, k=3, **{"max_new_tokens = 8": "max_new_tokens = 6"}), "-o", out)
    assert code == 0 and result["changed"] and set(result["ran"]) >= {"prompts_none_b1", "trace-prompts"}
    assert "profile" not in result["ran"]  # the profile does not depend on output lengths
    cell = json.loads((out / "runs/prompts_none_b1/cell.json").read_text())
    assert cell["max_new_tokens"] == 6


def test_an_interrupted_sweep_keeps_finished_cells_and_no_half_cell(tiny, monkeypatch):
    from specscope.study.sweep.execute import EngineSession

    real = EngineSession.run_cell
    calls = []

    def run_cell(self, settings, folder, advance):
        calls.append(folder)
        if len(calls) == 2:
            (folder / "requests.jsonl").write_text("half a cell")
            raise KeyboardInterrupt
        return real(self, settings, folder, advance)

    monkeypatch.setattr(EngineSession, "run_cell", run_cell)
    out = tiny / "interrupted"
    code, _, _ = sweep(write_config(tiny), "-o", out)
    assert code == 130
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["prompts_none_b1"]
    assert not any((out / "sweep" / "tmp").iterdir())
    assert not (out / "report.html").exists()
    monkeypatch.setattr(EngineSession, "run_cell", real)
    code, result, _ = sweep(write_config(tiny), "-o", out)  # resumes
    assert code == 0 and "prompts_none_b1" not in result["ran"] and "prompts_ngram_k2_b1" in result["ran"]


def test_an_adaptive_cell_runs_k_adaptive_and_reports_as_its_own_method(tiny):
    from specscope.analysis.loaders import load_study

    out = tiny / "adaptive"
    config = tiny / "adaptive.toml"
    config.write_text('model = "model"\nworkloads = ["prompts.jsonl"]\nmethods = ["none", "ngram"]\nk = [2]\n'
                      'adaptive = ["ngram"]\nadaptive_cost_model = "fitted"\nbatch_sizes = [2]\nnum_prompts = 2\n'
                      'max_new_tokens = 8\n[profile]\nks = [0, 2]\ncontexts = [16]\nreps = 1\n')
    code, result, text = sweep(config, "-o", out)
    assert code == 0, text
    assert result["ran"] == ["profile", "prompts_none_b2", "prompts_ngram_k2_b2", "prompts_ngram_kadaptive_b2"]
    summary = json.loads((out / "runs/prompts_ngram_kadaptive_b2/summary.json").read_text())
    assert summary["adaptive"] is True and summary["cost_model"] == "fitted"  # this sweep's own fit
    assert summary["label"] == "adaptive(ngram)" and summary["method"] == "ngram" and summary["num_completed"] == 2
    runs = load_study(out).runs.set_index("cell")
    assert runs.loc["prompts_ngram_kadaptive_b2", "method"] == "adaptive(ngram)"
    assert runs.loc["prompts_ngram_kadaptive_b2", "label"] == "adaptive(ngram)"
    assert runs.loc["prompts_ngram_k2_b2", "label"] == "ngram k=2"  # not mistaken for a fixed k (its cap is 8)
    choices = runs.loc["prompts_ngram_kadaptive_b2", "adaptive_choices"]
    assert choices == summary["adaptive_choices"] and choices["sequence_steps"] > 0
    page = (out / "report.html").read_text()
    assert "What each <code>--k adaptive</code> cell chose" in page and "cost model&#x27;s choice" in page


def test_a_tree_cell_drafts_a_tree_and_reports_against_its_chain(tiny):
    from specscope.analysis.loaders import load_study

    out = tiny / "tree"
    config = tiny / "tree.toml"
    config.write_text('model = "model"\nworkloads = ["prompts.jsonl"]\nmethods = ["none", "draft"]\n'
                      'draft_model = "self:1"\nk = [2]\ntrees = ["2x2"]\nbatch_sizes = [2]\nnum_prompts = 2\n'
                      'max_new_tokens = 8\n')
    code, result, text = sweep(config, "-o", out)
    assert code == 0, text
    assert result["ran"] == ["prompts_none_b2", "prompts_draft_k2_b2", "prompts_draft_tree2x2_b2"]
    summary = json.loads((out / "runs/prompts_draft_tree2x2_b2/summary.json").read_text())
    assert summary["tree"] == "2x2" and summary["num_completed"] == 2
    study = load_study(out)
    runs = study.runs.set_index("cell")
    assert runs.loc["prompts_draft_tree2x2_b2", "label"] == "draft(self:1) tree 2x2"
    assert study.requests["ttft_s"].notna().all()  # every request timed its first token
    assert [row["batch_size"] for row in result["verdict"]] == [2]
    page = (out / "report.html").read_text()
    assert "<h2>Chain against tree</h2>" in page and "<h2>Verdict</h2>" in page


def test_tree_cells_traces_and_simulation_reach_the_report(tiny):
    from specscope.analysis.loaders import load_study

    out = tiny / "trees"
    config = tiny / "trees.toml"
    config.write_text('model = "model"\nworkloads = ["prompts.jsonl"]\nmethods = ["none", "draft"]\n'
                      'draft_model = "self:2"\nk = [3]\ntrees = ["6"]\nbatch_sizes = [1]\nnum_prompts = 2\n'
                      'max_new_tokens = 8\n[trace]\nk_max = 4\nnum_prompts = 2\n[profile]\nbatch_sizes = [1]\n'
                      'ks = [0, 3]\ncontexts = [16]\nreps = 1\n[simulate]\nbatch_sizes = [1, 4]\n')
    code, result, text = sweep(config, "-o", out)
    assert code == 0, text
    assert "prompts_draft_tree6_b1" in result["ran"] and "prompts_draft_k3_b1" in result["ran"]
    summary = json.loads((out / "runs/prompts_draft_tree6_b1/summary.json").read_text())
    assert summary["tree"] == "3x2" and summary["method"] == "draft" and summary["k"] == 6
    runs = load_study(out).runs.set_index("cell")
    assert runs.loc["prompts_draft_tree6_b1", "method"] == "draft@tree:3x2"
    simulation = (out / "simulation.csv").read_text()
    assert "draft@tree:3x2,tree," in simulation
    assert "<h2>Chain against tree</h2>" in (out / "report.html").read_text()


@pytest.mark.parametrize("replace,message", [
    ({"k = [2]": "k = [0]"}, "k: [0] must be a list of integers >= 1"),
    ({"methods = [\"none\", \"ngram\"]": "methods = [\"none\", \"medusa\"]"}, "Unknown method 'medusa'"),
    ({"workloads = [\"prompts.jsonl\"]": "workloads = [\"chit-chat\"]"}, "Unknown workload 'chit-chat'"),
    ({"num_prompts = 4\n": "num_prompts = 4\nnum_promts = 4\n"}, "num_promts: unknown key"),
])
def test_bad_config_is_one_line_error(tiny, tmp_path, replace, message):
    code, _, text = sweep(write_config(tiny, **replace), "-o", tmp_path / "o")
    assert code == 2 and message in text and "\n" not in text
    assert not (tmp_path / "o").exists()


def test_bad_config_from_the_real_entry_point_exits_2_with_one_line(tiny, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('workloads = ["chat"]\nk = "three"\n')
    result = subprocess.run([sys.executable, "-m", "specscope", "sweep", str(config), "-o", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("specscope: error: ") and "k: 'three'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# Issue 24, case 7: two sweeps into one folder.
def test_a_second_sweep_into_a_held_folder_exits_2_at_once_naming_the_holder(tiny, first_run):
    import os

    from specscope.study.sweep.lock import study_lock

    out, _ = first_run
    marker = out / "sweep" / "tmp" / "another-sweeps-cell"
    marker.mkdir(parents=True)
    before = sorted(p.relative_to(out) for p in out.rglob("*") if p.name != "lock")
    with study_lock(out):  # the "first sweep"
        code, _, text = sweep(write_config(tiny), "-o", out)
    assert code == 2 and "\n" not in text
    assert text == f"{out}: another sweep (pid {os.getpid()}) is writing this study folder; wait for it to finish " \
                   "(or stop it), then run this again"
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.name != "lock") == before  # its tmp/ untouched
    marker.rmdir()


def test_the_lock_of_a_killed_sweep_is_taken_over(tiny, first_run):
    out, _ = first_run
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / "sweep" / "lock").write_text(dead.stdout)  # what a SIGKILLed sweep leaves
    code, result, text = sweep(write_config(tiny), "-o", out)
    assert code == 0, text  # (earlier tests changed the config: what ran depends on them)
    assert (out / "sweep" / "lock").read_text() == ""  # released


@pytest.mark.slow
def test_two_concurrent_sweeps_the_second_stops_the_first_finishes_every_cell_valid(tiny, tmp_path):
    """The real entry point in two processes: the second exits 2 at once, the first finishes every step."""
    import os
    import time

    from specscope.study.sweep import state
    from specscope.study.sweep.config import load_config
    from specscope.study.sweep.lock import holder_pid

    config = write_config(tiny, **{"max_new_tokens = 8": "max_new_tokens = 24", "num_prompts = 4\n": "num_prompts = 6\n"})
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen([sys.executable, "-m", "specscope", "sweep", str(config), "-o", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while holder_pid(out) != first.pid:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first sweep never took the lock"
            time.sleep(0.05)
        started = time.monotonic()
        code, _, text = sweep(config, "-o", out)
        assert code == 2 and f"another sweep (pid {first.pid})" in text and "\n" not in text
        assert time.monotonic() - started < 30  # at once: nothing loaded, nothing run
        assert first.poll() is None, "the first sweep finished before the second was tried; make it longer"
        stdout, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    steps = load_config(config).steps
    assert {step.name: state.status(out, step) for step in steps} == {step.name: state.DONE for step in steps}
    for cell in (out / "runs").iterdir():
        summary = json.loads((cell / "summary.json").read_text())
        assert summary["partial"] is False and summary["num_completed"] == summary["num_requests"] == 6
    from specscope.analysis.loaders import load_study

    assert len(load_study(out).runs) == len([s for s in steps if s.kind == "run"]) == 4
