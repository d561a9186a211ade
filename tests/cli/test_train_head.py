"""The heads through the CLI: `run --method eagle3|eagle|mtp --head DIR`, and bad heads exit 2 with one line."""

import json

import pytest

from sd_helpers import repetitive_prompt_file, save_tiny_model_folder
from cli_helpers import cli

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
    return cli("run", "--json", "--model", tiny["model"], "--workload", tiny["prompts"], "--max-new-tokens", 8, "-o", out,
               *extra)


def test_run_with_a_head_matches_plain(tiny, tmp_path):
    plain = _run(tiny, tmp_path / "plain", "--method", "none")
    assert plain.returncode == 0, plain.stderr
    sd = _run(tiny, tmp_path / "sd", "--method", "eagle3", "--head", tiny["eagle3"], "--k", 3, "--batch-size", 2)
    assert sd.returncode == 0, sd.stderr
    read = lambda d: {r["id"]: r["output_token_ids"] for r in map(json.loads, open(d / "requests.jsonl"))}  # noqa: E731
    assert read(tmp_path / "plain") == read(tmp_path / "sd")
    assert json.loads(sd.stdout.strip().splitlines()[-1])["proposed_tokens"] > 0


@pytest.mark.parametrize("extra,message", [
    (("--method", "eagle3"), "no eagle3 head ships for model"),
    (("--method", "eagle", "--head", "OTHER"), "vocabulary of 300 tokens does not match the target's 512"),
    (("--method", "mtp", "--head", "EAGLE3"), "is an eagle3 head, not mtp"),
    (("--method", "eagle", "--head", "/no/such/head"), "not a folder"),
    (("--method", "eagle3", "--draft-model", "EAGLE3"), "give the eagle3 head folder with --head DIR"),
])
def test_bad_heads_exit_2_with_one_line(tiny, tmp_path, extra, message):
    extra = [{"OTHER": tiny["other"], "EAGLE3": tiny["eagle3"]}.get(e, e) for e in extra]
    result = _run(tiny, tmp_path / "o", *extra)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_head_rejects_bad_kind(tmp_path):
    result = cli("train-head", "--kind", "medusa", "-o", tmp_path / "h")
    assert result.returncode == 2 and "medusa" in result.stderr


def test_train_head_on_synthetic_prompts_stops_at_max_steps(tiny, tmp_path):
    out = tmp_path / "head"
    result = cli("train-head", "--json", "--kind", "eagle", "--model", tiny["model"], "--workloads", "", "--synthetic", 5,
                 "--max-new-tokens", 4, "--epochs", 3, "--max-steps", 2, "--draft-vocab", 64, "-o", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["sequences"] == 5
    meta = json.loads((out / "TRAINING.json").read_text())
    assert meta["settings"]["max_steps"] == 2
    assert all(p.startswith("synth-") for p in meta["data"]["key"]["prompts"])
    assert (out / "model.safetensors").is_file() and not (out / "train_state.pt").exists()


def test_train_head_data_resumes_from_kept_outputs(tiny, tmp_path):
    """Greedy outputs already kept in DATA.outputs.pt are not generated again; the file goes once data.pt is written."""
    import torch

    args = ("train-head", "--kind", "mtp", "--model", tiny["model"], "--workloads", "", "--prompts", tiny["prompts"],
            "--max-new-tokens", 4, "--epochs", 1, "--draft-vocab", 64)
    first = cli(*args, "--data", tmp_path / "a.pt", "-o", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "a.pt.outputs.pt").exists()
    data = torch.load(tmp_path / "a.pt", weights_only=False)
    key = data["meta"]["key"]
    fake = {pid: (torch.arange(3 + i).numpy(), 2) for i, pid in enumerate(key["prompts"])}  # not what the model says
    torch.save({"key": key, "done": fake}, tmp_path / "b.pt.outputs.pt")
    second = cli(*args, "--data", tmp_path / "b.pt", "-o", tmp_path / "b")
    assert second.returncode == 0, second.stderr
    reused = torch.load(tmp_path / "b.pt", weights_only=False)
    assert [t.tolist() for t in reused["tokens"]] == [list(range(3 + i)) for i in range(len(key["prompts"]))]


def test_train_head_on_prompts_the_target_writes(tiny, tmp_path):
    """--sampled-prompts: user turns sampled from a chat model, kept beside the data for a rerun."""
    model = save_tiny_model_folder(tmp_path / "chat-model", seed=0, word_seed=1)
    config_file = model / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["chat_template"] = "{% for m in messages %}w5 {{ m['content'] }} w7 {% endfor %}"
    config_file.write_text(json.dumps(config))
    args = ("train-head", "--kind", "mtp", "--model", model, "--workloads", "", "--sampled-prompts", 3,
            "--max-new-tokens", 4, "--epochs", 1, "--draft-vocab", 64, "--data", tmp_path / "d.pt")
    first = cli(*args, "-o", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    kept = (tmp_path / "d.pt.sampled.jsonl").read_text().splitlines()
    assert len(kept) == 4  # the key, then the three prompts
    meta = json.loads((tmp_path / "a" / "TRAINING.json").read_text())
    assert meta["data"]["key"]["prompts"] == [f"sampled-0-{n:05d}" for n in range(3)]
    second = cli(*args, "-o", tmp_path / "b")  # same prompts and data: both reused
    assert second.returncode == 0, second.stderr
    assert json.loads((tmp_path / "b" / "TRAINING.json").read_text())["data"]["reused"] is True


def test_train_head_sampled_prompts_need_a_chat_model(tiny, tmp_path):
    result = cli("train-head", "--kind", "mtp", "--model", tiny["model"], "--workloads", "", "--sampled-prompts", 2,
                 "-o", tmp_path / "h")
    assert result.returncode == 2 and "no chat template" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "h").exists()  # nothing left behind
