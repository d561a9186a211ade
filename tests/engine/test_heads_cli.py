"""The heads through the CLI: `run --method eagle3|eagle|mtp --draft-model DIR`, and bad heads exit 2 with one line."""

import json

import pytest

from sd_helpers import repetitive_prompt_file, save_tiny_model_folder
from test_commands import cli

from specscope.engine.heads.checkpoint import random_head, save_head
from specscope.engine.model import tiny_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinyheads")
    config = tiny_config()
    return {
        "model": save_tiny_model_folder(root / "model", seed=0, word_seed=1),
        "prompts": repetitive_prompt_file(root / "prompts.jsonl", n=3),
        "eagle3": save_head(random_head("eagle3", config, seed=1, draft_vocab=64), root / "eagle3"),
        "other": save_head(random_head("eagle", tiny_config(vocab_size=300), seed=1), root / "other"),
    }


def _run(tiny, out, *extra):
    return cli("run", "--model", tiny["model"], "--workload", tiny["prompts"], "--max-new-tokens", 8, "-o", out, *extra)


def test_run_with_a_head_matches_plain(tiny, tmp_path):
    plain = _run(tiny, tmp_path / "plain", "--method", "none")
    assert plain.returncode == 0, plain.stderr
    sd = _run(tiny, tmp_path / "sd", "--method", "eagle3", "--draft-model", tiny["eagle3"], "--k", 3, "--batch-size", 2)
    assert sd.returncode == 0, sd.stderr
    read = lambda d: {r["id"]: r["output_token_ids"] for r in map(json.loads, open(d / "requests.jsonl"))}  # noqa: E731
    assert read(tmp_path / "plain") == read(tmp_path / "sd")
    assert json.loads(sd.stdout.strip().splitlines()[-1])["proposed_tokens"] > 0


@pytest.mark.parametrize("extra,message", [
    (("--method", "eagle3"), "no eagle3 head ships for model"),
    (("--method", "eagle", "--draft-model", "OTHER"), "vocabulary of 300 tokens does not match the target's 512"),
    (("--method", "mtp", "--draft-model", "EAGLE3"), "is an eagle3 head, not mtp"),
    (("--method", "eagle", "--draft-model", "/no/such/head"), "not a folder"),
])
def test_bad_heads_exit_2_with_one_line(tiny, tmp_path, extra, message):
    extra = [{"OTHER": tiny["other"], "EAGLE3": tiny["eagle3"]}.get(e, e) for e in extra]
    result = _run(tiny, tmp_path / "o", *extra)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_head_rejects_bad_kind(tmp_path):
    result = cli("train-head", "--kind", "medusa", "-o", tmp_path / "h")
    assert result.returncode == 2 and "medusa" in result.stderr
