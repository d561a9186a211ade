"""The n-gram (prompt lookup) matcher."""

import numpy as np

from specscope.engine.proposers import ProposerInput, build_proposer
from specscope.settings import RunSettings
from specscope.ngram import ngram_match


def ctx(*tokens):
    return np.array(tokens, dtype=np.int64)


def naive(context, n_min, n_max, k):
    """Reference: per-n scan from the right, as the rule is worded."""
    L = len(context)
    for n in range(n_max, n_min - 1, -1):
        if L <= n:
            continue
        suffix = list(context[L - n :])
        for end in range(L - 2, n - 2, -1):
            if list(context[end - n + 1 : end + 1]) == suffix:
                return context[end + 1 : end + 1 + k]
    return context[:0]


def test_docstring_example():
    c = ctx(5, 1, 2, 3, 9, 1, 2, 3, 8, 1, 2, 3)
    assert ngram_match(c, 2, 3, 2).tolist() == [8, 1]
    assert ngram_match(c, 2, 3, 5).tolist() == [8, 1, 2, 3]


def test_prefers_longer_match_over_more_recent():
    c = ctx(7, 1, 2, 3, 4, 9, 9, 2, 3, 5, 1, 2, 3)
    assert ngram_match(c, 2, 3, 1).tolist() == [4]  # [1 2 3] beats the more recent [2 3]
    assert ngram_match(c, 2, 2, 1).tolist() == [5]  # with n_max 2, the most recent [2 3]


def test_no_match_and_short_contexts():
    assert ngram_match(ctx(1, 2, 3, 4, 5), 1, 3, 3).size == 0
    assert ngram_match(ctx(1, 1), 2, 3, 3).size == 0
    assert ngram_match(ctx(1, 2, 1, 2), 2, 3, 0).size == 0
    assert ngram_match(ctx(1, 2, 1, 2), 2, 3, 4).tolist() == [1, 2]


def test_matches_naive_reference_on_random_contexts():
    rng = np.random.default_rng(0)
    for trial in range(400):
        c = rng.integers(0, 4, size=rng.integers(1, 60)).astype(np.int64)
        n_min = int(rng.integers(1, 4))
        n_max = n_min + int(rng.integers(0, 4))
        k = int(rng.integers(1, 6))
        assert ngram_match(c, n_min, n_max, k).tolist() == naive(c, n_min, n_max, k).tolist(), (c, n_min, n_max, k)


def test_proposer_pads_ragged_drafts():
    proposer = build_proposer("ngram", RunSettings.build(method="ngram", k=3, ngram_min=2, ngram_max=3))
    contexts = [ctx(1, 2, 3, 1, 2), ctx(4, 5, 6), ctx(1, 2, 9, 9, 9, 1, 2)]
    proposal = proposer.propose(ProposerInput([0, 1, 2], contexts, [3, 3, 1]))
    assert proposal.num_draft.tolist() == [3, 0, 1]
    assert proposal.draft_ids[0].tolist() == [3, 1, 2]
    assert proposal.draft_ids[2, 0].item() == 9
    assert proposal.draft_probs is None
