"""Trees through the verbs on a tiny model folder: `trace --trees` records tree keys, `simulate` prices them."""

import csv
import json

import pytest

from cli_helpers import cli
from sd_helpers import repetitive_prompt_file, save_tiny_model_folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_trees")
    return {"model": save_tiny_model_folder(root / "model", seed=0, word_seed=1),
            "prompts": repetitive_prompt_file(root / "prompts.jsonl")}


@pytest.fixture(scope="module")
def traced(tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("tree_trace") / "t.jsonl"
    result = cli("trace", "--json", "--model", tiny["model"], "--workload", tiny["prompts"], "--max-new-tokens", 12,
                 "--proposers", "ngram,draft", "--draft-model", "self:2", "--k-max", 4, "--trees", "6,dynamic:8:4x3",
                 "-o", path)
    assert result.returncode == 0, result.stderr
    return path, json.loads(result.stdout.strip().splitlines()[-1])


def test_trace_records_tree_keys_beside_the_chains(traced):
    from specscope.formats.trace import read_trace

    path, summary = traced
    trace = read_trace(path)
    assert trace.proposers == ["ngram", "draft", "draft@tree:3x2", "draft@tree:dynamic:8:4x3"]  # the n-gram cannot branch
    assert trace.header()["proposer_labels"]["draft@tree:3x2"] == "draft(self:2) tree 3x2"
    for req in trace.requests:
        assert req.acc_len["draft@tree:3x2"].max() <= 3 and req.acc_len["draft@tree:dynamic:8:4x3"].max() <= 4
    assert set(summary["mean_acc_len"]) == set(trace.proposers)


def test_simulate_prices_trees_against_chains(traced, tmp_path):
    path, _ = traced
    out = tmp_path / "sim.csv"
    result = cli("simulate", path, "--cost-model", "smollm2-135m-cpu", "--proposers", "draft",
                 "--proposers", "draft@tree:6", "--policies", "fixed-3", "--policies", "tree", "--policies", "oracle",
                 "--batch-sizes", 1, "--batch-sizes", 64, "-o", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(out)))
    got = {(r["proposers"], r["policy"], r["batch_size"]) for r in rows}
    for b in ("1", "64"):
        assert {("draft", "fixed-3", b), ("draft", "oracle", b), ("draft@tree:3x2", "tree", b),
                ("draft@tree:3x2", "oracle", b)} <= got
    assert ("draft@tree:3x2", "fixed-3", "1") not in got and ("draft", "tree", "1") not in got
    assert all(float(r["speedup"]) > 0 for r in rows)


@pytest.mark.parametrize("args,message", [
    (["--proposers", "ngram,draft", "--trees", "7"], "--tree '7' is not a tree spec"),
    (["--proposers", "ngram", "--trees", "6"], "--trees: none of --proposers ngram can draft a tree"),
    (["--proposers", "draft", "--trees", "6,3x2"], "names a tree shape twice"),
])
def test_trace_bad_trees(tiny, tmp_path, args, message):
    result = cli("trace", "--model", tiny["model"], "--workload", tiny["prompts"], *args, "-o", tmp_path / "t.jsonl")
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "t.jsonl").exists()
