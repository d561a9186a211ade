"""`specscope report DIR`: a short summary, the report's path, one JSON line last; bad input exits 2."""

import json
import subprocess
import sys

from analysis.conftest import build_study


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "specscope", *args], capture_output=True, text=True)


def test_report_verb_writes_the_page_and_ends_with_json(tmp_path):
    root = build_study(tmp_path / "study", runs=False, traces=False, profile=False)  # simulation.csv only
    result = run_cli("report", str(root), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["report"] == str(root / "report.html") and (root / "report.html").is_file()
    assert summary["figures"] == 2 and summary["sections"] == 14
    assert "Verdict" in summary["missing"] and summary["verdict"] == []
    assert f"report: {root / 'report.html'}" in result.stdout
    assert "not shown: no measured runs" in result.stdout


def test_report_verb_prints_the_verdict_first_and_no_json_unless_asked(tmp_path):
    root = build_study(tmp_path / "study", traces=False, simulation=False)
    result = run_cli("report", str(root))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "verdict:" and lines[1].startswith("  chat, batch 1: enable draft tree 3x2 (+47.0% ± ")
    assert "{" not in result.stdout  # a human summary only


def test_report_verb_output_option(tmp_path):
    root = build_study(tmp_path / "study", runs=False, traces=False)
    result = run_cli("report", str(root), "-o", str(tmp_path / "out" / "r.html"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "r.html").is_file() and not (root / "report.html").exists()


def test_report_verb_on_an_empty_folder_is_one_line_exit_2(tmp_path):
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nothing to report" in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_report_verb_refuses_an_output_folder_before_drawing(tmp_path):
    root = build_study(tmp_path / "study", runs=False, traces=False)
    result = run_cli("report", str(root), "-o", str(tmp_path))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "is a folder; pass a file path such as" in result.stderr and not (root / "report.html").exists()
