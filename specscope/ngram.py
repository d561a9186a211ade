"""Prompt lookup (n-gram matching): the drafts an n-gram proposer finds in a context. Torch-free.

Shared by the engine's n-gram proposer (`specscope/engine/proposers/ngram.py`) and the simulator,
which recomputes from a trace's own tokens where the n-gram found a match and how many drafts it
could offer (`specscope/simulator/replay_trace.py`).
Matching rule as in the study's configuration (and vLLM's ngram proposer, prompt_lookup_min/max):
try n = ngram_max down to ngram_min; take the most recent earlier occurrence of the context's last
n tokens; propose up to k tokens that followed it. No match: no draft.
"""

from __future__ import annotations

import numpy as np

NAME = "ngram"  # the n-gram proposer's name: `--method ngram`, a trace's proposer, a cost model's draft
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
