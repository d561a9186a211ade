"""A trace laid out as flat arrays for one proposer set: what every replay reads.

Positions: a request's position is the number of output tokens committed so far. After prefill it
is 1 (prefill produces output token 0). A step taken at position `pos` reads `acc_len[pos - 1]`,
the value recorded at the last committed token, exactly as the published simulator does; the
request is done once `pos >= G`, where G is the length of its acc_len list (the shortest list when
several proposers are combined).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specscope.traces import Trace


@dataclass(frozen=True)
class ReplayTrace:
    """Prompt lengths, generation lengths and per-position acc_len of every request, flattened."""

    name: str
    proposers: tuple[str, ...]
    prompt_len: np.ndarray  # [R] int64
    gen_len: np.ndarray  # [R] int64, G >= 1
    offset: np.ndarray  # [R] int64, row of each request's output position 0 in `acc`
    acc: np.ndarray  # [sum(G), P] int64, acc_len per output position and proposer
    source: Trace

    @classmethod
    def from_trace(cls, trace: Trace, proposers) -> "ReplayTrace":
        proposers = tuple(proposers)
        trace.require_proposers(proposers)
        gen_len = np.array([r.gen_len(proposers) for r in trace.requests], dtype=np.int64)
        prompt_len = np.array([r.prompt_len for r in trace.requests], dtype=np.int64)
        offset = np.concatenate([[0], np.cumsum(gen_len)[:-1]]).astype(np.int64)
        acc = np.empty((int(gen_len.sum()), len(proposers)), dtype=np.int64)
        for req, start, g in zip(trace.requests, offset, gen_len):
            for j, name in enumerate(proposers):
                acc[start:start + g, j] = req.acc_len[name][:g]
        return cls(trace.name, proposers, prompt_len, gen_len, offset, acc, trace)

    @property
    def num_requests(self) -> int:
        return len(self.gen_len)

    def rows(self, request: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Row in `acc` that a step at `position` reads (the acc_len at position - 1)."""
        return self.offset[request] + position - 1
