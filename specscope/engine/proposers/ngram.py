"""Prompt-lookup (n-gram) proposer: copy what followed the last n tokens the previous time they occurred.

The pure matcher `ngram_match` works on one context held as a numpy array; `NgramProposer` applies
it to each sequence of a step. No model runs, so drafts are deterministic (q is one-hot).
Matching rule as in the study's configuration (and vLLM's ngram proposer, prompt_lookup_min/max):
try n = ngram_max down to ngram_min; take the most recent earlier occurrence of the context's last
n tokens; propose up to k tokens that followed it. No match: no draft (a plain decode step).
"""

from __future__ import annotations

import numpy as np

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput

_EMPTY = np.zeros(0, dtype=np.int64)


# context: [L] int64 — prompt + output so far
def ngram_match(context: np.ndarray, n_min: int, n_max: int, k: int) -> np.ndarray:
    """Draft of up to k tokens following the most recent earlier occurrence of the longest matching suffix.

    Worked example: context = [5 1 2 3 9 1 2 3 8 1 2 3], n_min 2, n_max 3, k 2. The suffix [1 2 3]
    occurred ending at index 3 and at index 7; the most recent is 7, so the draft is context[8:10] =
    [8 1]. With k = 5 the draft is [8 1 2 3] (it stops at the end of the context).

    Cost: one vectorised comparison over the context to find where its last token occurred before,
    then at most n_max - 1 vectorised steps over those candidates (never a per-token Python scan).
    """
    L = len(context)
    if k <= 0 or L <= n_min:
        return _EMPTY
    ends = np.flatnonzero(context[: L - 1] == context[L - 1])  # candidate match end positions
    if ends.size == 0:
        return _EMPTY
    matched = np.ones(ends.size, dtype=np.int64)  # suffix length matched so far at each candidate
    alive = np.ones(ends.size, dtype=bool)
    for j in range(1, n_max):
        before = ends - j
        alive &= before >= 0
        alive[alive] = context[before[alive]] == context[L - 1 - j]
        if not alive.any():
            break
        matched += alive
    best = matched.max()
    if best < n_min:
        return _EMPTY
    end = ends[matched == best][-1]  # the most recent among the longest matches
    return context[end + 1 : end + 1 + k]


class NgramProposer(Proposer):
    """Prompt lookup over prompt + output so far (`--ngram-min`, `--ngram-max`)."""

    name = "ngram"
    drafts_are_free_prefixes = True  # the match does not depend on k: k drafts are the first k of more

    def __init__(self, options, target=None, tokenizer=None):
        super().__init__(options)
        self.n_min, self.n_max = options.ngram_min, options.ngram_max

    def propose(self, batch: ProposerInput) -> Proposal:
        drafts = [ngram_match(ctx, self.n_min, self.n_max, k) for ctx, k in zip(batch.contexts, batch.max_draft)]
        return Proposal.from_lists(drafts)

