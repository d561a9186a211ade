"""Tree shapes in per-position traces (`tree_acc_lengths`): each position's acc_len under a draft tree equals what an
engine run drafting that tree accepts at the steps that start there, for heads and the draft model alike."""

import numpy as np
import pytest

from specscope.engine.heads.checkpoint import random_head, save_head
from specscope.engine.model import tiny_config
from specscope.engine.proposers import build_proposer
from specscope.engine.tracing import collect_traces, tree_match
from specscope.settings import RunSettings
from specscope.tree_spec import parse_tree

from sd_helpers import repetitive_requests, run

K_MAX = 4
MAX_NEW = 20
CASES = [("draft", "3x2"), ("draft", "dynamic:8:4x3"), ("eagle3", "6"), ("eagle3", "dynamic:12:5x3"), ("mtp", "3x2"),
         ("eagle", "dynamic:8:4x2")]


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    root = tmp_path_factory.mktemp("trace_heads")
    return {kind: save_head(random_head(kind, tiny_config(), seed=3, draft_vocab=64), root / kind)
            for kind in ("eagle", "eagle3", "mtp")}


def settings(method, heads, tree=None):
    source = {"draft_model": "self:2"} if method == "draft" else {"head": str(heads[method])}
    return RunSettings.build(method=method, k=K_MAX, tree=tree, **source)


@pytest.fixture(scope="module")
def traced(tiny_model, heads):
    proposers = {f"{m}@{t}": build_proposer(m, settings(m, heads, t), target=tiny_model) for m, t in CASES}
    proposers["draft"] = build_proposer("draft", settings("draft", heads), target=tiny_model)
    requests = repetitive_requests(6, seed=3)
    return [(seq, acc) for seq, acc, _ in collect_traces(tiny_model, proposers, requests, K_MAX, 3, MAX_NEW, (2,))]


def test_tree_match_walks_the_tree():
    drafts, parents = np.array([5, 6, 7, 8, 9]), np.array([-1, -1, 0, 1, 1])  # 5 -> 7; 6 -> 8, 9
    assert tree_match(drafts, parents, np.array([6, 9, 1])) == 2
    assert tree_match(drafts, parents, np.array([5, 8])) == 1
    assert tree_match(drafts, parents, np.array([4])) == 0


def test_tree_values_are_capped_by_the_depth_and_some_drafts_are_accepted(traced):
    for method, spec in CASES:
        depth = parse_tree(spec).depth
        values = [acc[f"{method}@{spec}"] for _, acc in traced]
        assert all(v[0] == 1 and v.min() >= 1 and v.max() <= depth for v in values), (method, spec)
    accepted = {case: sum(int(acc[f"{case[0]}@{case[1]}"].sum()) - len(seq.output) for seq, acc in traced)
                for case in CASES}
    # random heads rarely agree with the tiny target; the draft model (its own first layers) often does
    assert accepted[("draft", "3x2")] > 0 and accepted[("draft", "dynamic:8:4x3")] > 0, accepted
    assert sum(n for (method, _), n in accepted.items() if method != "draft") > 0, accepted


def test_a_tree_accepts_at_least_its_first_child_chain(traced):
    """A 3x2 tree's first-child path is the draft's greedy chain of 2 (`test_tree.py`), so it accepts at least as much."""
    for _, acc in traced:
        assert (acc["draft@3x2"] >= np.minimum(acc["draft"], 3)).all()


@pytest.mark.parametrize("method,spec", CASES)
def test_tree_run_is_reproduced_from_the_trace(tiny_model, heads, traced, method, spec):
    source = "self:2" if method == "draft" else str(heads[method])
    out, _ = run(tiny_model, repetitive_requests(6, seed=3), method, K_MAX, 3, source, max_new=MAX_NEW, tree=spec)
    for seq, acc in traced:
        ran, pos = out[seq.request.id], 1
        assert ran.output.tolist() == seq.output.tolist()
        for accepted in ran.accepted:
            assert accepted == acc[f"{method}@{spec}"][pos] - 1, (seq.request.id, pos)
            pos += accepted + 1
        assert pos == seq.num_output
