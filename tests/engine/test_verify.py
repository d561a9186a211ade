"""Verification: greedy matching and rejection sampling reproduce the target's own decoding."""

import torch

from specscope.engine.sampling import sampling_probs
from specscope.engine.verify import verify_greedy, verify_rejection

V = 6
P_ROWS = torch.tensor(
    [
        [0.40, 0.25, 0.15, 0.10, 0.06, 0.04],
        [0.05, 0.05, 0.50, 0.20, 0.10, 0.10],
        [0.10, 0.30, 0.10, 0.30, 0.10, 0.10],
    ]
)
Q = torch.tensor([0.10, 0.40, 0.05, 0.25, 0.15, 0.05])
CHI2_CRIT = 25.7  # chi-square, 5 degrees of freedom, p = 1e-4


def chi2(tokens: torch.Tensor, probs: torch.Tensor) -> float:
    counts = torch.bincount(tokens, minlength=V).double()
    expected = probs.double() * len(tokens)
    return float(((counts - expected) ** 2 / expected).sum())


def draws(n=200_000, seed=0, one_hot=False):
    gen = torch.Generator().manual_seed(seed)
    K = P_ROWS.shape[0] - 1
    if one_hot:  # a deterministic proposer always drafts the same tokens
        draft_ids = torch.tensor([0, 2]).expand(n, K)
        draft_probs = None
    else:
        draft_ids = torch.multinomial(Q.expand(n * K, V), 1, generator=gen).view(n, K)
        draft_probs = Q.expand(n, K, V)
    target = P_ROWS.expand(n, K + 1, V)
    num_draft = torch.full((n,), K)
    return draft_ids, verify_rejection(target, draft_ids, num_draft, draft_probs, gen)


def test_greedy_example_from_docstring():
    target = torch.tensor([[7, 8, 9, 4], [1, 2, 3, 4], [5, 6, 7, 8]])
    draft = torch.tensor([[7, 8, 5], [1, 2, 3], [9, 6, 7]])
    num_accepted, tokens = verify_greedy(target, draft, torch.tensor([3, 2, 3]))
    assert num_accepted.tolist() == [2, 2, 0]  # row 1: only 2 real drafts, both match
    assert tokens[0, :3].tolist() == [7, 8, 9]


def test_rejection_sampling_matches_target_at_every_position():
    for one_hot in (False, True):
        _, (num_accepted, tokens) = draws(one_hot=one_hot)
        for j in range(P_ROWS.shape[0]):
            committed = tokens[num_accepted >= j, j]  # the j-th token exists when j drafts were accepted
            assert len(committed) > 5_000
            assert chi2(committed, P_ROWS[j]) < CHI2_CRIT, (one_hot, j)
        assert 0 < num_accepted.float().mean() < 2


def test_broken_samplers_fail_the_same_test():
    draft_ids, _ = draws()
    always_accept = draft_ids[:, 0]  # accepting every draft commits q's samples
    assert chi2(always_accept, P_ROWS[0]) > 100 * CHI2_CRIT
    # Accept with min(1, p/q) but redraw a rejection from p instead of normalize(max(p - q, 0)).
    gen = torch.Generator().manual_seed(1)
    x = draft_ids[:, 0]
    keep = torch.rand(len(x), generator=gen) < (P_ROWS[0][x] / Q[x]).clamp(max=1)
    redraw = torch.multinomial(P_ROWS[0].expand(len(x), V), 1, generator=gen).squeeze(-1)
    assert chi2(torch.where(keep, x, redraw), P_ROWS[0]) > 10 * CHI2_CRIT


def test_rejection_sampling_is_seeded():
    a = draws(n=1000, seed=5)[1]
    b = draws(n=1000, seed=5)[1]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_no_draft_samples_from_target():
    gen = torch.Generator().manual_seed(0)
    n = 100_000
    num_accepted, tokens = verify_rejection(
        P_ROWS[:1].expand(n, 1, V), torch.zeros(n, 0, dtype=torch.long), torch.zeros(n, dtype=torch.long), None, gen
    )
    assert num_accepted.eq(0).all()
    assert chi2(tokens[:, 0], P_ROWS[0]) < CHI2_CRIT


def test_top_p_keeps_smallest_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    probs = sampling_probs(logits, temperature=1.0, top_p=0.7)
    assert torch.allclose(probs, torch.tensor([0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0]))
    assert torch.allclose(sampling_probs(logits, 1.0, 0.1), torch.tensor([1.0, 0, 0, 0]))
