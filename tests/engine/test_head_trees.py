"""Draft trees from EAGLE / EAGLE-3 / MTP heads (and the draft model's dynamic tree): shapes, the tree growth,
the heads' per-branch recurrence, greedy equality with plain decoding, and the target distribution under sampling."""

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

from sd_helpers import repetitive_prompt_file, repetitive_requests, run, save_tiny_model_folder

from specscope.engine.engine import Engine, proposer_features
from specscope.engine.heads.checkpoint import random_head, save_head
from specscope.engine.model import random_model, tiny_config
from specscope.engine.proposers import ProposerInput, build_proposer
from specscope.engine.sampling import sampling_probs
from specscope.engine.scheduler import Request
from specscope.engine.tree import chunk_parents, children_lists
from specscope.engine.tree_growth import grow_tree
from specscope.engine.verify import verify_tree_rejection
from specscope.errors import SpecscopeError
from specscope.settings import RunSettings
from specscope.tree_spec import parse_tree, split_tree_key, tree_key

KINDS = ("eagle", "eagle3", "mtp")
SHAPES = ("3x2", "21", "dynamic:8:4x2", "dynamic:20")
MAX_NEW = 16


# ---------------------------------------------------------------------------------------------
# Shapes.


def test_presets_and_dynamic_specs():
    assert parse_tree("6").label == "3x2" and parse_tree("6").num_nodes == 6
    assert parse_tree("21").label == "3x4" and parse_tree("21").num_nodes + 1 == 21  # 20 drafts + the root
    dyn = parse_tree("dynamic:21")
    assert dyn.dynamic and dyn.label == "dynamic:21:7x4" and dyn.num_nodes == 21 and dyn.depth == 7
    assert parse_tree(" dynamic : 10 : 5x3 ").label == "dynamic:10:5x3"
    assert parse_tree("3x2").draft_tokens == 4 and parse_tree("4x1").draft_tokens == 4  # a chain k=3: k + 1
    assert dyn.draft_tokens == 1 + 1 + 5 * 4  # the root and 4 frontier nodes at each of levels 1..5, + 1
    assert tree_key("eagle3", "6") == "eagle3@tree:3x2"
    assert split_tree_key("eagle3@tree:dynamic:20") == ("eagle3", parse_tree("dynamic:20"))
    assert split_tree_key("eagle3") == ("eagle3", None)


@pytest.mark.parametrize("spec", ["dynamic:0", "dynamic:30:3x2", "dynamic:5:1x4", "dynamic:x", "7", "dynamic:300:20x20"])
def test_bad_dynamic_specs_are_one_line_errors(spec):
    with pytest.raises(SpecscopeError) as err:
        parse_tree(spec)
    assert "--tree" in str(err.value) and "\n" not in str(err.value)


def test_grow_tree_layout_and_dynamic_selection_match_brute_force():
    """Static: the TreeSpec layout with each node's top-B children. Dynamic: EAGLE-2's selection, enumerated by hand."""
    V = 12
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(V, V, generator=gen) * 2  # logits of a node's children given its token

    def expand(frontier):
        return table[frontier.tokens] + 0.3 * frontier.depth

    root = torch.randn(3, V, generator=gen)
    for spec in ("3x2", "4x3"):
        tree = parse_tree(spec)
        tokens, parents = grow_tree(tree, root, expand)
        assert all(row.tolist() == tree.parents.tolist() for row in parents)
        first = tokens[:, : tree.branching]
        assert torch.equal(first, root.topk(tree.branching).indices)
    for spec in ("dynamic:10:5x3", "dynamic:20", "dynamic:6:3x2"):
        tree = parse_tree(spec)
        tokens, parents = grow_tree(tree, root, expand)
        for b in range(3):
            assert all(-1 <= p < j for j, p in enumerate(parents[b].tolist()))
            got = sorted(path_tokens(tokens[b], parents[b], j) for j in range(tokens.shape[1]))
            assert got == brute_force_dynamic(tree, root[b], lambda tok, depth: table[tok] + 0.3 * depth)


def path_tokens(tokens, parents, j):
    path = []
    while j >= 0:
        path.append(int(tokens[j]))
        j = int(parents[j])
    return tuple(reversed(path))


def brute_force_dynamic(tree, root_logits, child_logits):
    """EAGLE-2 by the definition: candidates (score, path), frontier of top-K per level, keep the N best."""
    score, idx = torch.log_softmax(root_logits, -1).topk(tree.topk)
    level = [(float(s), (int(t),)) for s, t in zip(score, idx)]
    candidates, frontier = list(level), level
    for depth in range(1, tree.depth - 1):
        new = []
        for s0, path in frontier:
            s, t = torch.log_softmax(child_logits(path[-1], depth), -1).topk(tree.topk)
            new += [(s0 + float(a), path + (int(c),)) for a, c in zip(s, t)]
        candidates += new
        frontier = sorted(new, key=lambda c: -c[0])[: tree.topk]
    best = sorted(range(len(candidates)), key=lambda j: (-candidates[j][0], j))[: tree.nodes]
    return sorted(candidates[j][1] for j in best)


# ---------------------------------------------------------------------------------------------
# The heads' tree recurrence: every node sees exactly what a chain along its path would.


@pytest.fixture(scope="module")
def head_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    return {kind: save_head(random_head(kind, tiny_config(), seed=3, draft_vocab=64), root / kind) for kind in KINDS}


def features(model, proposer, context):
    """The target's features of context[:-1], as the engine hands them to a head."""
    layers = tuple(getattr(proposer, "hidden_layers", ()))
    cache = model.new_cache(1, len(context) + 1)
    out = model.forward_chunks(cache, [0], [context], hidden_layers=layers)
    return proposer_features(out, 0, layers)[:-1]


@pytest.mark.parametrize("kind", ["eagle", "eagle3"])
@pytest.mark.parametrize("spec", ["4x2", "dynamic:12:5x3"])
def test_head_tree_nodes_match_chain_drafting(tiny_model, head_dirs, monkeypatch, kind, spec):
    """Each expanded node's logits (its children's distribution) equal those of feeding its path to the head as a
    chain: the tree mask shows a node its ancestors only, at the positions a chain would put them."""
    import specscope.engine.proposers.eagle as eagle_module

    seen = []  # (path tokens, logits) of every expanded node

    def recording_grow(spec_, root_logits, expand, vocab_ids=None):
        def wrapped(frontier):
            logits = expand(frontier)
            for b in range(frontier.tokens.shape[0]):
                for j in range(frontier.tokens.shape[1]):
                    anc = frontier.fed_tokens[b][frontier.ancestors[b, j]].tolist()
                    seen.append((b, tuple(anc) + (int(frontier.tokens[b, j]),), logits[b, j].clone()))
            return logits
        seen.append(("root", root_logits.clone()))
        return grow_tree(spec_, root_logits, wrapped, vocab_ids)

    monkeypatch.setattr(eagle_module, "grow_tree", recording_grow)
    rng = np.random.default_rng(1)
    contexts = [rng.integers(3, 500, size=n) for n in (9, 14)]
    settings = RunSettings.build(method=kind, head=str(head_dirs[kind]), tree=spec)
    proposer = build_proposer(kind, settings, target=tiny_model)
    proposer.bind(2, 64)
    for slot in (0, 1):
        proposer.reset(slot)
    hidden = [features(tiny_model, proposer, c) for c in contexts]
    proposal = proposer.propose(ProposerInput([0, 1], contexts, [parse_tree(spec).num_nodes] * 2, hidden=hidden))
    assert proposal.draft_probs is None and proposal.parents is not None
    nodes = [s for s in seen if s[0] != "root"]
    assert len(nodes) >= 2 * 2 and any(len(path) >= 2 for _, path, _ in nodes)

    chain = build_proposer(kind, RunSettings.build(method=kind, head=str(head_dirs[kind])), target=tiny_model)
    chain.bind(1, 64)
    for b, path, logits in nodes:
        chain.reset(0)
        ctx, hid = contexts[b], hidden[b]
        out, ref = chain._forward([0], [torch.as_tensor(ctx[1:])], hid, fed=True)
        chain.cache.lengths[0] = len(ctx) - 1
        for token in path:
            out, ref = chain._forward([0], [torch.tensor([token])], out, fed=False)
            chain.cache.lengths[0] += 1
        torch.testing.assert_close(logits, ref[0], rtol=1e-4, atol=1e-4)


def test_mtp_tree_children_are_each_heads_top_k(tiny_model, head_dirs):
    settings = RunSettings.build(method="mtp", head=str(head_dirs["mtp"]), tree="3x2")
    proposer = build_proposer("mtp", settings, target=tiny_model)
    chain = build_proposer("mtp", RunSettings.build(method="mtp", head=str(head_dirs["mtp"])), target=tiny_model)
    ctx = np.random.default_rng(2).integers(3, 500, size=10)
    hid = features(tiny_model, proposer, ctx)
    tree = proposer.propose(ProposerInput([0], [ctx], [6], hidden=[hid]))
    greedy = chain.propose(ProposerInput([0], [ctx], [2], hidden=[hid]))
    ids = tree.draft_ids[0].tolist()
    assert ids[0] == int(greedy.draft_ids[0, 0]) and ids[2] == int(greedy.draft_ids[0, 1])  # first-child path = chain
    assert ids[2:4] == ids[4:6]  # head 2's candidates hang under every level-1 node
    with pytest.raises(SpecscopeError, match="MTP head has 3 heads"):
        build_proposer("mtp", RunSettings.build(method="mtp", head=str(head_dirs["mtp"]), tree="5x2"), target=tiny_model)


# ---------------------------------------------------------------------------------------------
# Greedy: every head x tree shape equals plain decoding.


@pytest.fixture(scope="module")
def plain(tiny_model):
    requests = repetitive_requests(6, seed=4)
    return requests, run(tiny_model, requests, "none", k=0, batch_size=3, max_new=MAX_NEW)[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SHAPES)
def test_greedy_head_trees_equal_plain_decoding(tiny_model, head_dirs, plain, kind, spec):
    requests, expected = plain
    tree = parse_tree(spec)
    for batch_size in (1, 3) if spec in ("3x2", "dynamic:20") else (3,):
        out, engine = run(tiny_model, requests, kind, k=3, batch_size=batch_size, max_new=MAX_NEW,
                          draft=str(head_dirs[kind]), tree=spec)
        for rid, seq in expected.items():
            assert out[rid].output.tolist() == seq.output.tolist(), (kind, spec, batch_size, rid)
        decode = [s for s in engine.steps if s.num_prefill == 0]
        assert decode and all(s.proposed <= s.num_seqs * tree.num_nodes for s in decode)
        assert sum(s.proposed for s in decode) > 0


def test_draft_model_dynamic_tree_equals_plain_decoding(tiny_model, plain):
    requests, expected = plain
    for spec in ("dynamic:8:4x2", "dynamic:20"):
        out, engine = run(tiny_model, requests, "draft", k=3, batch_size=3, max_new=MAX_NEW, draft="self:2", tree=spec)
        assert all(out[rid].output.tolist() == seq.output.tolist() for rid, seq in expected.items()), spec
        assert sum(s.accepted for s in engine.steps) > 0


def test_dynamic_trees_have_a_shape_per_row(tiny_model, head_dirs):
    """Rows of one proposal carry different parents (the engine verifies each row's own tree)."""
    settings = RunSettings.build(method="eagle3", head=str(head_dirs["eagle3"]), tree="dynamic:10:6x3")
    proposer = build_proposer("eagle3", settings, target=tiny_model)
    proposer.bind(4, 64)
    rng = np.random.default_rng(5)
    contexts = [rng.integers(3, 500, size=8 + 3 * b) for b in range(4)]
    hidden = [features(tiny_model, proposer, c) for c in contexts]
    proposal = proposer.propose(ProposerInput([0, 1, 2, 3], contexts, [10, 10, 4, 0], hidden=hidden))
    assert proposal.num_draft.tolist() == [10, 10, 4, 0]
    shapes = {tuple(proposal.parents[b, :10].tolist()) for b in range(2)}
    parents = proposal.parents[:3].tolist()
    assert all(-1 <= p < j for row in parents for j, p in enumerate(row))
    assert len({tuple(r) for r in proposal.parents[:, :10].tolist()}) > 1 or len(shapes) > 1


# ---------------------------------------------------------------------------------------------
# Sampling: recursive rejection sampling over head trees (deterministic top-k children, no q) gives the target's
# distribution. A vocabulary of 16 makes random heads' candidates hit often, so accepted paths are plentiful.

V16 = 16


def chi2_critical(df: int, z: float = 3.719) -> float:
    """Upper 1e-4 quantile of chi-square with `df` degrees of freedom (Wilson-Hilferty)."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def chi2_stat(samples, probs) -> tuple[float, int]:
    """Chi-square of samples against probs [V], bins with an expected count < 5 pooled; (statistic, df)."""
    counts = np.bincount(np.asarray(samples), minlength=len(probs)).astype(float)
    expected = np.asarray(probs, dtype=float) * len(samples)
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    return float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()), int(keep.sum()) - 1


@pytest.fixture(scope="module")
def model16():
    return random_model(tiny_config(vocab_size=V16), seed=1)


@pytest.fixture(scope="module")
def heads16(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads16")
    return {kind: save_head(random_head(kind, tiny_config(vocab_size=V16), seed=3), root / kind) for kind in KINDS}


def tree_draws(model, head_dir, kind, spec, temperature, n, seed=0, verifier=verify_tree_rejection):
    """One head tree for a fixed context and the target's p at its nodes; n verifications of it. Returns
    (p [n_nodes + 1, V], drafts, parents, committed token lists, accepted paths)."""
    settings = RunSettings.build(method=kind, head=str(head_dir), tree=spec, temperature=temperature)
    proposer = build_proposer(kind, settings, target=model)
    proposer.bind(1, 64)
    ctx = np.array([3, 5, 7, 9, 11, 4, 6, 8], dtype=np.int64)
    proposal = proposer.propose(ProposerInput([0], [ctx], [parse_tree(spec).num_nodes],
                                              hidden=[features(model, proposer, ctx)]))
    assert proposal.draft_probs is None  # deterministic children: what the verifier assumes without q
    n_nodes = int(proposal.num_draft[0])
    drafts, parents = proposal.draft_ids[0, :n_nodes], proposal.parents[0, :n_nodes].numpy()
    cache = model.new_cache(1, 64)
    model.forward_chunks(cache, [0], [ctx[:-1]])
    cache.set_length(0, len(ctx) - 1)
    logits = model.forward_chunks(cache, [0], [torch.cat((torch.as_tensor(ctx[-1:]), drafts))],
                                  trees=[chunk_parents(1, parents)]).logits[0]
    p = sampling_probs(logits, temperature)
    gen = torch.Generator().manual_seed(seed)
    draws = [verifier(p, drafts.tolist(), parents, None, gen) for _ in range(n)]
    return p, drafts, parents, [t for _, t in draws], [path for path, _ in draws]


def check_tree_distribution(p, parents, tokens, paths):
    """First committed token ~ p at the root; after accepting node j, the next token ~ p at node j (for the two
    most often accepted nodes, one of them below depth 1 where the tree reaches it)."""
    stat, df = chi2_stat([t[0] for t in tokens], p[0])
    assert stat < chi2_critical(df), ("root", stat, df)
    accepted = Counter(node for path in paths for node in path)
    assert accepted, "no draft was ever accepted: the test would not exercise the tree"
    depth1 = [j for j, _ in accepted.most_common() if parents[j] < 0][:1]
    deeper = [j for j, _ in accepted.most_common() if parents[j] >= 0][:1]
    checked = 0
    for node in depth1 + deeper:
        after = [t[path.index(node) + 1] for t, path in zip(tokens, paths) if node in path]
        if len(after) < 200:
            continue
        stat, df = chi2_stat(after, p[node + 1])
        assert stat < chi2_critical(df), (node, stat, df)
        checked += 1
    assert checked >= 1
    return accepted


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", ["3x2", "dynamic:8:4x3"])
def test_sampled_head_trees_reproduce_the_target_distribution(model16, heads16, kind, spec):
    p, drafts, parents, tokens, paths = tree_draws(model16, heads16[kind], kind, spec, 1.0, 6000)
    accepted = check_tree_distribution(p, parents, tokens, paths)
    assert sum(accepted.values()) >= 200  # as many as the check above needs of one node


def test_the_distribution_check_catches_a_sampler_that_forgets_the_residual(model16, heads16):
    def forgetful(p_rows, drafts, parents, q, gen):
        kids, cur, path = children_lists(parents), -1, []
        while True:
            p, chosen = p_rows[cur + 1], None
            for j in kids[cur]:
                if float(torch.rand((), generator=gen)) < float(p[drafts[j]]):
                    chosen = j
                    break
            if chosen is None:
                return path, [drafts[j] for j in path] + [int(torch.multinomial(p, 1, generator=gen))]
            path.append(chosen)
            cur = chosen

    p, drafts, parents, tokens, paths = tree_draws(model16, heads16["eagle3"], "eagle3", "3x2", 1.0, 6000,
                                                   verifier=forgetful)
    stat, df = chi2_stat([t[0] for t in tokens], p[0])
    assert stat > chi2_critical(df)


@pytest.mark.slow
def test_engine_samples_the_target_distribution_with_a_dynamic_head_tree(model16, heads16):
    """End to end at temperature 0.9: the second output token (the first drafted step) given the first follows the
    target's conditional distribution."""
    temperature, n = 0.9, 1200
    prompt = [3, 5, 7, 9, 11, 4]
    settings = RunSettings.build(method="eagle3", head=str(heads16["eagle3"]), tree="dynamic:8:4x3", batch_size=48,
                                 max_new_tokens=4, temperature=temperature, seed=0)  # > 2: at 2 the drafted step
    # has room for one token, so commits clip every accepted draft away (accepted counts kept drafts)
    engine = Engine(model16, build_proposer("eagle3", settings, target=model16), settings, stop_token_ids=())
    outs = [s.output.tolist() for s in engine.generate([Request(f"r{i}", prompt) for i in range(n)])]
    assert sum(s.accepted for s in engine.steps) > 50
    first, _ = Counter(o[0] for o in outs).most_common(1)[0]
    cache = model16.new_cache(1, 16)
    logits = model16.forward_chunks(cache, [0], [prompt + [first]]).logits[0][-1]
    after = [o[1] for o in outs if o[0] == first]
    stat, df = chi2_stat(after, sampling_probs(logits[None], temperature)[0])
    assert stat < chi2_critical(df)


# ---------------------------------------------------------------------------------------------
# Command line, and the default model.


@pytest.mark.parametrize("spec,label,nodes", [("dynamic:21", "dynamic:21:7x4", 21), ("6", "3x2", 6)])
def test_run_eagle3_with_a_tree_on_a_tiny_model(tmp_path, spec, label, nodes):
    from cli_helpers import cli

    model = save_tiny_model_folder(tmp_path / "model")
    head = save_head(random_head("eagle3", tiny_config(), seed=3, draft_vocab=64), tmp_path / "head")
    prompts = repetitive_prompt_file(tmp_path / "prompts.jsonl", n=3)
    result = cli("run", "--json", "--model", model, "--workload", prompts, "--max-new-tokens", 8, "--method",
                 "eagle3", "--head", head, "--tree", spec, "-b", 2, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["tree"] == label and summary["k"] == nodes and summary["num_completed"] == 3
    records = [json.loads(line) for line in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()]
    assert all(set(r["steps"]["proposed"]) <= {nodes} for r in records)


@pytest.mark.parametrize("method", ["ngram"])
def test_run_rejects_a_tree_for_a_method_that_cannot_branch(tmp_path, method):
    from cli_helpers import cli

    result = cli("run", "--method", method, "--tree", "dynamic:21", "-o", tmp_path / "out")
    message = result.stderr.strip()
    assert result.returncode == 2 and "eagle3" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_head_trees_on_the_default_model_equal_plain_decoding(default_model_and_tokenizer):
    model, tokenizer = default_model_and_tokenizer
    prompts = ["The capital of France is", "def fibonacci(n):\n    "]
    requests = [Request(f"p{i}", tokenizer(p)["input_ids"]) for i, p in enumerate(prompts)]
    plain, _ = run(model, requests, batch_size=2, max_new=16, stop=())
    for kind, spec in (("eagle3", "dynamic:20"), ("eagle3", "6"), ("eagle", "21"), ("mtp", "dynamic:8")):
        out, engine = run(model, requests, kind, k=3, batch_size=2, max_new=16, stop=(), tree=spec)
        for rid, seq in plain.items():
            assert out[rid].output.tolist() == seq.output.tolist(), (kind, spec)
        assert sum(s.accepted for s in engine.steps) > 0, (kind, spec)
