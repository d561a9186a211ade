"""Turning target or draft logits into a sampling distribution, and drawing from it.

`sampling_probs` applies temperature and nucleus (top-p) filtering; the same function serves the
target (the distribution p that rejection sampling must reproduce) and a sampling draft model (its
proposal distribution q). Temperature 0 means greedy decoding, handled by the callers with argmax;
these functions require temperature > 0. `draft_confidence` reports how sure a proposer was of each
token it drafted, for policies that stop drafting on low confidence (`specscope/policy/confidence.py`).
"""

from __future__ import annotations

import torch


# logits: [..., vocab]
def sampling_probs(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """Softmax of logits / temperature, restricted to the smallest set of tokens with mass >= top_p."""
    if temperature <= 0:
        raise ValueError("sampling_probs needs temperature > 0 (temperature 0 is greedy: use argmax)")
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of strictly more likely tokens
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)  # the top token always survives
    kept = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return kept / kept.sum(dim=-1, keepdim=True)


# probs: [rows, vocab] (each row sums to 1)
def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token id per row, drawn with `generator` (seeded: reproducible). Returns [rows]."""
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def draft_confidence(logits: torch.Tensor, q: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor:
    """[rows] the proposer's probability for the tokens `ids` it drafted from `logits` [rows, vocab]: greedy
    (q None) the largest softmax probability; sampled, q at the drawn id (ids index q's vocabulary)."""
    if q is None:
        return torch.softmax(logits.float(), dim=-1).amax(dim=-1)
    return q.gather(-1, ids.view(-1, 1)).squeeze(-1)
