"""Resampling a trace's requests, so that serve mode never fills a batch of B from fewer than B requests silently.

Serve mode runs up to B requests at once (`serve.py`). A trace of R < B distinct requests can never
fill that batch: B = 16, 32, ... would all price the same R-request run, and the bound would be an
R-request number under a batch-B label. Instead, `serve_requests` decides how many requests a batch
size B is simulated with, and `resample` draws them from the trace:

- R >= B: the trace's requests as they are (nothing changes);
- R < B:  `num_requests` requests (default `default_num_requests`: max(4 B, R), enough to keep B
          requests running for most of the run): every distinct request once, plus draws with
          replacement, in a seeded random order. The result still rests on only R distinct requests,
          which the simulation CSV says (`distinct_requests`) and the report marks.

Paper mode keeps the published simulator's semantics (each request alone, B identical copies) and
is never resampled. Pure numpy; a seeded draw repeats exactly.
"""

from __future__ import annotations

import numpy as np

from specscope.errors import SpecscopeError
from specscope.simulator.replay_trace import ReplayTrace

REQUESTS_PER_SLOT = 4  # default: 4 requests per batch slot keep the batch full for most of the run


def default_num_requests(batch_size: int, distinct: int) -> int:
    """Requests to simulate batch size B with when the trace holds fewer than B: max(4 B, R)."""
    return max(REQUESTS_PER_SLOT * batch_size, distinct)


def serve_requests(batch_size: int, distinct: int, num_requests: int | None) -> int | None:
    """How many requests serve mode simulates batch size B with: None = the trace's own (R >= B, or resampling
    turned off with num_requests = 0), else the resampled count (`num_requests` or the default)."""
    if num_requests == 0 or distinct >= batch_size:
        return None
    n = default_num_requests(batch_size, distinct) if num_requests is None else num_requests
    if n < batch_size:
        raise SpecscopeError(f"--num-requests {n} is smaller than batch size {batch_size}: the batch could never "
                             f"fill; use at least {batch_size} (or 0 to simulate the trace's {distinct} requests as "
                             "they are)")
    return max(n, distinct)


def resample_indices(distinct: int, num_requests: int, rng: np.random.Generator) -> np.ndarray:
    """[num_requests] request indices: each of the `distinct` requests once, the rest drawn with replacement,
    in a random order."""
    extra = rng.integers(0, distinct, size=max(num_requests - distinct, 0))
    return rng.permutation(np.concatenate([np.arange(distinct), extra])).astype(np.int64)


def take_requests(rt: ReplayTrace, index: np.ndarray) -> tuple[ReplayTrace, np.ndarray]:
    """The replay trace of requests `index` (repeats allowed), and [rows] the original row of each new row."""
    index = np.asarray(index, dtype=np.int64)
    gen_len = rt.gen_len[index]
    offset = np.concatenate([[0], np.cumsum(gen_len)[:-1]]).astype(np.int64)
    rows = np.concatenate([np.arange(rt.offset[r], rt.offset[r] + g) for r, g in zip(index, gen_len)]).astype(np.int64)

    def pick(table):
        return None if table is None else table[rows]

    resampled = ReplayTrace(rt.name, rt.proposers, rt.prompt_len[index], gen_len, offset, rt.acc[rows], rt.source,
                            pick(rt.draft_cap), pick(rt.confidence), rt.confident, pick(rt.censored))
    return resampled, rows


def resample(rt: ReplayTrace, num_requests: int, seed: list[int] | int) -> tuple[ReplayTrace, np.ndarray]:
    """`num_requests` requests drawn from `rt` (`resample_indices`, seeded), and the original row of each new row."""
    index = resample_indices(rt.num_requests, num_requests, np.random.default_rng(seed))
    return take_requests(rt, index)
