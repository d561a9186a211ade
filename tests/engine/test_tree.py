"""Tree verification: spec parsing, the tree attention layout, greedy equality with plain decoding,
the multi-draft rejection sampler's distribution, KV compaction, and `run --tree` on the command line."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from specscope.engine.engine import Engine
from specscope.engine.kernels.build import cpu_kernels_available
from specscope.engine.proposers import build_proposer
from specscope.settings import RunSettings
from specscope.engine.scheduler import Request
from specscope.engine.tree import (
    ancestor_mask,
    chunk_layout,
    chunk_parents,
    depths,
    parse_tree,
)
from specscope.engine.verify import verify_tree_greedy, verify_tree_rejection
from specscope.errors import SpecscopeError

from sd_helpers import repetitive_prompt_file, repetitive_requests, run, save_tiny_model_folder

MAX_NEW = 16


# ---------------------------------------------------------------------------------------------
# Spec and layout.


def test_tree_spec_counts_match_the_study():
    assert parse_tree("3x2").num_nodes == 6  # the study's depth 3, branching 2 -> 6 draft tokens
    assert parse_tree("3x4").num_nodes + 1 == 21  # branching 4 -> 21 tokens with the root
    assert parse_tree("3x2").parents.tolist() == [-1, -1, 0, 0, 1, 1]
    assert parse_tree("4x1").parents.tolist() == [-1, 0, 1]  # Dx1 is the chain k = D - 1
    assert [list(r) for r in parse_tree("3x2").levels()] == [[0, 1], [2, 3, 4, 5]]
    assert parse_tree(" 2X3 ").label == "2x3"


@pytest.mark.parametrize("spec", ["0x2", "3x0", "1x2", "abc", "3x", "x2", "3x2x1", "-3x2", "3.5x2", "20x20"])
def test_bad_tree_specs_are_one_line_errors(spec):
    with pytest.raises(SpecscopeError) as err:
        parse_tree(spec)
    assert "--tree" in str(err.value) and "\n" not in str(err.value)


def test_chunk_parents_depths_and_ancestors():
    parents = chunk_parents(1, [-1, -1, 0, 0, 1, 1])  # root at chunk index 0, drafts at 1..6
    assert parents.tolist() == [-1, 0, 0, 1, 1, 2, 2]
    assert depths(parents).tolist() == [0, 1, 1, 2, 2, 2, 2]
    anc = ancestor_mask(parents)
    assert np.flatnonzero(anc[5]).tolist() == [0, 2, 5]  # node 5 (draft 4) sees root, its parent, itself
    assert np.flatnonzero(anc[1]).tolist() == [0, 1]
    assert chunk_parents(2, [-1, 0]).tolist() == [-1, 0, 1, 2]  # two committed tokens, then a chain


def test_chunk_layout_positions_and_visible_keys():
    layout = chunk_layout([10, 4], [4, 2], [np.array([-1, 0, 0, 1]), None])
    assert layout.rope_positions.tolist() == [10, 11, 11, 12, 4, 5]
    assert layout.visible[:4].tolist() == [[10, 10, -1, -1], [10, 10, 11, -1], [10, 10, 12, -1], [10, 10, 11, 13]]
    assert layout.visible[4:].tolist() == [[5, -1, -1, -1], [6, -1, -1, -1]]  # plain causal chunk
    assert layout.masks[1] is None
    with pytest.raises(ValueError):
        chunk_layout([0], [2], [np.array([-1, 1])])  # a parent must precede its child


def test_greedy_walk_example_from_docstring():
    draft = [5, 7, 1, 2, 8, 9]  # root children 5, 7; 5's children 1, 2; 7's children 8, 9
    parents = [-1, -1, 0, 0, 1, 1]
    target = [7, 0, 9, 0, 0, 0, 4]  # argmax at the root, then at each draft node
    assert verify_tree_greedy(target, draft, parents) == ([1, 5], [7, 9, 4])
    assert verify_tree_greedy([3, 0, 0, 0, 0, 0, 0], draft, parents) == ([], [3])


# ---------------------------------------------------------------------------------------------
# One target pass over a tree gives every node the logits of plain decoding along its path.


def ops_params():
    return ["torch", pytest.param("cpu", marks=pytest.mark.skipif(not cpu_kernels_available(), reason="no CPU kernels"))]


@pytest.fixture
def with_kernels(tiny_model, request):
    old = tiny_model.kernels
    tiny_model.kernels = request.param
    yield tiny_model
    tiny_model.kernels = old


def quantised_tiny_model():
    """A tiny model on GGUF Q8_0 blocks and the CPU kernels: a row's logits never depend on its batch."""
    from specscope.engine.kernels.ggml import Q8_0, GGMLLinear, quantize_rows
    from specscope.engine.model import random_model, tiny_config

    model = random_model(tiny_config(hidden_size=128, head_dim=32, intermediate_size=256))
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear):
            model.set_submodule(name, GGMLLinear(quantize_rows(module.weight, Q8_0), Q8_0, module.in_features, module.bias))
    model.kernels = "cpu"
    return model


@pytest.mark.parametrize("kind", ["torch", pytest.param("q8-kernels", marks=pytest.mark.skipif(
    not cpu_kernels_available(), reason="no CPU kernels"))])
def test_tree_forward_matches_chain_forward_per_node(tiny_model, kind):
    """Torch path: close; GGUF blocks + CPU kernels: bit-identical to decoding each path as a chain."""
    exact = kind == "q8-kernels"
    model = quantised_tiny_model() if exact else tiny_model
    old, model.kernels = model.kernels, model.kernels if exact else "torch"
    try:
        check_tree_forward(model, exact)
    finally:
        model.kernels = old


def check_tree_forward(model, exact):
    gen = torch.Generator().manual_seed(0)
    prefix = torch.randint(3, 512, (11,), generator=gen)
    tree = parse_tree("3x3")
    drafts = torch.randint(3, 512, (tree.num_nodes,), generator=gen)
    parents = chunk_parents(1, tree.parents)

    cache = model.new_cache(2, 64)
    model.forward_chunks(cache, [1], [prefix[:-1]])
    cache.set_length(1, len(prefix) - 1)
    tree_logits = model.forward_chunks(cache, [1], [torch.cat([prefix[-1:], drafts])], trees=[parents]).logits[0]

    for node in [0, 1, 3, 4, 8, 12]:  # chunk rows: the root, level-1 and level-2 nodes
        path = np.flatnonzero(ancestor_mask(parents)[node])[1:] - 1  # draft indices along the path
        chain = model.new_cache(1, 64)
        model.forward_chunks(chain, [0], [prefix[:-1]])
        chain.set_length(0, len(prefix) - 1)
        ref = model.forward_chunks(chain, [0], [torch.cat([prefix[-1:], drafts[path]])]).logits[0][-1]
        if exact:
            assert torch.equal(tree_logits[node], ref), node
        else:
            torch.testing.assert_close(tree_logits[node], ref, rtol=1e-4, atol=1e-4)

    # Compaction: moving the path root -> draft 1 -> draft 6 into place gives the chain's K/V there.
    assert tree.parents[6] == 1
    start = len(prefix) - 1
    cache.move(1, [start + 2, start + 7], [start + 1, start + 2])
    chain = model.new_cache(1, 64)
    model.forward_chunks(chain, [0], [torch.cat([prefix, drafts[[1, 6]]])])
    n = start + 3
    if exact:
        assert torch.equal(cache.k[:, 1, :, :n], chain.k[:, 0, :, :n])
        assert torch.equal(cache.v[:, 1, :, :n], chain.v[:, 0, :, :n])
    else:
        torch.testing.assert_close(cache.k[:, 1, :, :n], chain.k[:, 0, :, :n], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The engine: greedy tree SD equals plain decoding.


@pytest.fixture(scope="module")
def requests():
    return repetitive_requests(8)


@pytest.fixture(scope="module")
def plain(tiny_model, requests):
    return run(tiny_model, requests, batch_size=8, max_new=MAX_NEW)[0]


def run_tree(model, requests, spec, batch_size, draft="self:2", **cfg):
    settings = RunSettings.build(method="draft", k=3, draft_model=draft, tree=spec, batch_size=batch_size,
                                 max_new_tokens=MAX_NEW, **cfg)
    engine = Engine(model, build_proposer("draft", settings, target=model), settings, stop_token_ids=(2,))
    return {s.request.id: s for s in engine.generate(requests)}, engine


@pytest.mark.parametrize("with_kernels", ops_params(), indirect=True)
@pytest.mark.parametrize("spec", ["3x2", "2x3"])
def test_greedy_tree_sd_equals_plain_decoding(with_kernels, requests, plain, spec):
    tree = parse_tree(spec)
    accepted = 0
    for batch_size, num in ((1, 3), (8, 8)):
        out, engine = run_tree(with_kernels, requests[:num], spec, batch_size)
        for rid, seq in out.items():
            assert seq.output.tolist() == plain[rid].output.tolist(), (spec, batch_size, rid)
            assert all(p == tree.num_nodes and 0 <= a <= tree.depth - 1 for p, a in zip(seq.proposed, seq.accepted))
        decode = [s for s in engine.steps if s.num_prefill == 0]
        assert all(s.proposed == s.num_seqs * tree.num_nodes for s in decode)
        assert all(s.draft > 0 and s.verify > 0 and s.sample >= 0 and s.overhead >= 0 for s in decode)
        accepted += sum(s.accepted for s in decode)
    assert accepted > 0


def test_tree_rejects_methods_that_cannot_branch(tiny_model):
    with pytest.raises(SpecscopeError, match="cannot draft a tree"):
        settings = RunSettings.build(method="ngram", k=3, tree="3x2")
        Engine(tiny_model, build_proposer("ngram", settings), settings)


def test_tree_sampling_is_seeded_and_runs(tiny_model, requests):
    kw = dict(temperature=0.8)
    a, engine = run_tree(tiny_model, requests[:4], "3x2", 4, seed=3, **kw)
    b, _ = run_tree(tiny_model, requests[:4], "3x2", 4, seed=3, **kw)
    c, _ = run_tree(tiny_model, requests[:4], "3x2", 4, seed=4, **kw)
    assert all(a[r].output.tolist() == b[r].output.tolist() for r in a)
    assert any(a[r].output.tolist() != c[r].output.tolist() for r in a)
    assert all(len(s.output) == MAX_NEW or s.output[-1] == 2 for s in a.values())


def test_greedy_tree_on_the_default_model(default_model_and_tokenizer):
    model, tokenizer = default_model_and_tokenizer
    prompts = ["The capital of France is", "def fibonacci(n):\n    "]
    requests = [Request(f"p{i}", tokenizer(p)["input_ids"]) for i, p in enumerate(prompts)]
    plain, _ = run(model, requests, batch_size=2, max_new=12, stop=())
    out, engine = run_tree(model, requests, "3x2", 2, draft="self:8")
    assert {r: s.output.tolist()[:12] for r, s in out.items()} == {r: s.output.tolist() for r, s in plain.items()}
    assert sum(s.accepted for s in engine.steps) > 0


# ---------------------------------------------------------------------------------------------
# Multi-draft rejection sampling reproduces the target distribution.

V = 6
P = torch.tensor(
    [
        [0.40, 0.25, 0.15, 0.10, 0.06, 0.04],
        [0.05, 0.05, 0.50, 0.20, 0.10, 0.10],
        [0.10, 0.30, 0.10, 0.30, 0.10, 0.10],
    ]
)
Q = torch.tensor([[0.10, 0.40, 0.05, 0.25, 0.15, 0.05], [0.30, 0.05, 0.30, 0.05, 0.25, 0.05]])
CHI2_CRIT = 25.7  # chi-square, 5 degrees of freedom, p = 1e-4
TREE = parse_tree("3x2")  # draft 0, 1 under the root; 2, 3 under draft 0; 4, 5 under draft 1


def target_rows():
    """Target p at the root and at each of the 6 draft nodes (deliberately different per node)."""
    return torch.stack([P[0], P[1], P[2], P[0], P[2], P[1], P[0]])


def chi2(tokens, probs) -> float:
    counts = torch.bincount(torch.as_tensor(tokens), minlength=V).double()
    expected = probs.double() * len(tokens)
    return float(((counts - expected) ** 2 / expected).sum())


def tree_draws(n, sampled, seed=0, verifier=verify_tree_rejection):
    """(first committed token, second committed token given draft 0 was accepted) over n steps."""
    gen = torch.Generator().manual_seed(seed)
    p_rows = target_rows()
    first, second = [], []
    fixed = torch.tensor([0, 2, 2, 3, 1, 0])  # deterministic top-2 children per node
    for _ in range(n):
        if sampled:  # siblings drawn i.i.d. (with replacement) from their parent's q
            q = torch.stack([Q[0], Q[0], Q[1], Q[1], Q[1], Q[1]])
            drafts = torch.multinomial(q, 1, replacement=True, generator=gen).squeeze(-1)
        else:
            q, drafts = None, fixed
        path, tokens = verifier(p_rows, drafts.tolist(), TREE.parents, q, gen)
        first.append(tokens[0])
        if path[:1] == [0]:
            second.append(tokens[1])
    return first, second


@pytest.mark.parametrize("sampled", [False, True])
def test_tree_rejection_sampling_matches_target(sampled):
    first, second = tree_draws(12_000, sampled)
    assert chi2(first, P[0]) < CHI2_CRIT
    assert len(second) > 1000
    assert chi2(second, target_rows()[1]) < CHI2_CRIT  # after accepting draft 0: its row's p


def forgetful_verifier(p_rows, drafts, parents, q, gen):
    """A broken sampler: tries each sibling against the unchanged p (no residual), then samples p."""
    p = p_rows[0]
    for j in (0, 1):
        if float(torch.rand((), generator=gen)) < float(p[drafts[j]]):
            return [j], [drafts[j], 0]
    return [], [int(torch.multinomial(p, 1, generator=gen))]


def test_broken_tree_sampler_fails_the_same_test():
    first, _ = tree_draws(12_000, False, verifier=forgetful_verifier)
    assert chi2(first, P[0]) > 10 * CHI2_CRIT


# ---------------------------------------------------------------------------------------------
# Command line.


def cli(*args):
    from specscope.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if isinstance(result.exception, SpecscopeError):
        return 2, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.mark.parametrize("spec,method", [("0x2", "draft"), ("3x0", "draft"), ("abc", "draft"), ("3x2", "ngram")])
def test_run_rejects_bad_trees_before_loading(tmp_path, spec, method):
    code, message = cli("run", "--method", method, "--tree", spec, "-o", tmp_path / "out")
    assert code == 2 and "--tree" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_run_with_tree_on_a_tiny_model(tmp_path):
    model = save_tiny_model_folder(tmp_path / "model")
    prompts = repetitive_prompt_file(tmp_path / "prompts.jsonl", n=3)
    code, stdout = cli("run", "--json", "--model", model, "--workload", prompts, "--max-new-tokens", 8, "--method", "draft",
                       "--draft-model", "self:2", "--tree", "3x2", "-b", 2, "-o", tmp_path / "out")
    assert code == 0, stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["tree"] == "3x2" and summary["num_completed"] == 3
    records = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    steps = [r["steps"] for r in records if "steps" in r]
    assert steps and all(set(st["proposed"]) <= {6} and max(st["accepted"], default=0) <= 2 for st in steps)
