"""`specscope workloads`: lists the six families, shows prompts, and reports bad input as one line."""

import json
import subprocess
import sys

import pytest

from specscope import cli


def run_main(monkeypatch, capsys, *args):
    """Run the CLI in-process through `cli.main` (so errors take the real exit-code path)."""
    monkeypatch.setattr(sys, "argv", ["specscope", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_lists_the_six_families(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "workloads", "--json")
    assert code == 0
    listed = last_json(out)["workloads"]
    assert [w["name"] for w in listed] == ["code-edit", "chat", "summarize", "math", "aime", "gpqa"]
    assert all(w["bundled"] >= 20 for w in listed)
    assert "InstructCoder" in out and "GPQA-Main" in out


def test_shows_a_seeded_subset(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "workloads", "gsm8k", "-n", "3", "--seed", "5", "--json")
    summary = last_json(out)
    assert code == 0 and summary["workload"] == "math" and summary["prompts"] == 3
    assert summary["ids"][0] in out


def test_custom_file_and_field(monkeypatch, capsys, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("question,notes\nHow many legs do 3 spiders have?,x\n", encoding="utf-8")
    args = ["workloads", "chat", "--source", str(path), "--prompt-field", "question", "--json"]
    code, out, _ = run_main(monkeypatch, capsys, *args)
    assert code == 0 and last_json(out)["prompts"] == 1 and last_json(out)["source"] == str(path)


@pytest.mark.parametrize(
    "rows, args, expected",
    [
        ('{"text": "hi"}\n', ["math"], "bad.jsonl:1: no field 'question'"),
        ('{"text": "hi"}\n', ["math", "--prompt-field", "prompt"], "bad.jsonl:1: no field 'prompt'"),
        ("", ["math"], "has no records"),
        ('{"question": "hi"}\n', ["poems"], "Unknown workload 'poems'. Available: aime, chat, code-edit, gpqa, math"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, rows, args, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(rows, encoding="utf-8")
    code, out, err = run_main(monkeypatch, capsys, "workloads", *args, "--source", str(path), "--json")
    assert code == 2 and out == ""
    assert err.startswith("specscope: error: ") and expected in err
    assert err.count("\n") == 1


def test_source_options_need_a_name(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "workloads", "--source", "x.jsonl")
    assert code == 2 and "name a workload" in err


@pytest.mark.slow
def test_render_counts_tokens_and_skips_long_prompts(monkeypatch, capsys, real_tokenizer):
    monkeypatch.setattr("specscope.engine.loading.load_tokenizer", lambda model=None: real_tokenizer)
    code, out, _ = run_main(monkeypatch, capsys, "workloads", "summarize", "--context-len", "420", "--json")
    summary = last_json(out)
    assert code == 0
    assert summary["prompts"] + summary["skipped_too_long"] == 20
    assert summary["skipped_too_long"] > 0 and summary["prompts"] > 0
    assert all(n < 420 for n in summary["prompt_tokens"])


def test_real_entry_point_exit_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "specscope", "workloads", "nope"], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "specscope: error: Unknown workload 'nope'. Available: aime, chat, code-edit, gpqa, math, summarize"
    )
