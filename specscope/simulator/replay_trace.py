"""A trace laid out as flat arrays for one proposer set: what every replay reads.

Positions: a request's position is the number of output tokens committed so far. After prefill it
is 1 (prefill produces output token 0). A step taken at position `pos` reads `acc_len[pos - 1]`,
the value recorded at the last committed token, exactly as the published simulator does; the
request is done once `pos >= G`, where G is the length of its acc_len list (the shortest list when
several proposers are combined).

n-gram matches (`draft_cap`): a trace that carries its requests' token ids and the n-gram settings it
was recorded with (`ngram_min`, `ngram_max`, `k_max` in its header, as `specscope trace` writes)
tells where the n-gram found a match: the proposer's own lookup (`specscope/ngram.py`) over prompt +
output so far gives, per position, how many drafts it could offer (0: no match; `ngram_caps`, once
per trace, handed to `from_trace`). The replays then cap a step's drafts there, as the engine does
(no match: a plain step, no draft cost), and policies may read it before deciding (the engine's
n-gram also drafts before `--k adaptive` decides). Without tokens the n-gram's misses stay the
published simulator's random model (`--ngram-match-prob`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specscope.ngram import ngram_match
from specscope.traces import Trace

NGRAM = "ngram"  # the proposer whose matches a trace's tokens reveal (and whose misses --ngram-match-prob models)


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
    draft_cap: np.ndarray | None = None  # [sum(G), P] int64 most drafts each proposer can offer there; None: unknown

    @classmethod
    def from_trace(cls, trace: Trace, proposers, caps: list[np.ndarray] | None = None) -> "ReplayTrace":
        """The trace's arrays for this proposer set; `caps` (`ngram_caps(trace)`, looked up once per trace)
        caps the n-gram's drafts, None leaves them uncapped (the random miss model)."""
        proposers = tuple(proposers)
        trace.require_proposers(proposers)
        gen_len = np.array([r.gen_len(proposers) for r in trace.requests], dtype=np.int64)
        prompt_len = np.array([r.prompt_len for r in trace.requests], dtype=np.int64)
        offset = np.concatenate([[0], np.cumsum(gen_len)[:-1]]).astype(np.int64)
        acc = np.empty((int(gen_len.sum()), len(proposers)), dtype=np.int64)
        for req, start, g in zip(trace.requests, offset, gen_len):
            for j, name in enumerate(proposers):
                acc[start:start + g, j] = req.acc_len[name][:g]
        draft_cap = None
        if NGRAM in proposers and caps is not None:
            draft_cap = np.full(acc.shape, np.iinfo(np.int64).max // 2, dtype=np.int64)
            draft_cap[:, proposers.index(NGRAM)] = np.concatenate([c[:g] for c, g in zip(caps, gen_len)])
        return cls(trace.name, proposers, prompt_len, gen_len, offset, acc, trace, draft_cap)

    @property
    def num_requests(self) -> int:
        return len(self.gen_len)

    def rows(self, request: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Row in `acc` that a step at `position` reads (the acc_len at position - 1)."""
        return self.offset[request] + position - 1

    def capped(self, rows: np.ndarray, k: np.ndarray, proposer: np.ndarray) -> np.ndarray:
        """The drafts a proposal of k from `proposer` really offers at these rows (k where unknown)."""
        return k if self.draft_cap is None else np.minimum(k, self.draft_cap[rows, proposer])


def ngram_caps_known(trace: Trace) -> bool:
    """Whether the trace records its n-gram settings and every request's tokens (see `ngram_caps`)."""
    n_min, n_max, k_max = trace.extra.get("ngram_min"), trace.extra.get("ngram_max"), trace.k_max
    if not all(isinstance(v, int) and v > 0 for v in (n_min, n_max, k_max)):
        return False
    return all(r.prompt_token_ids and len(r.output_token_ids) >= max(map(len, r.acc_len.values()), default=0) - 1
               for r in trace.requests)


def ngram_caps(trace: Trace) -> list[np.ndarray] | None:
    """Per request, the drafts the n-gram could offer at each output position (0: no match); None if unknown.

    Position i looks up prompt + output[:i] with the trace's own n-gram settings, up to k_max drafts,
    for every position of the request's longest acc_len list.
    """
    if not ngram_caps_known(trace):
        return None
    n_min, n_max, k_max = trace.extra["ngram_min"], trace.extra["ngram_max"], trace.k_max
    caps = []
    for req in trace.requests:
        context = np.asarray(list(req.prompt_token_ids) + list(req.output_token_ids), dtype=np.int64)
        prompt, g = len(req.prompt_token_ids), max(map(len, req.acc_len.values()), default=0)
        caps.append(np.array([len(ngram_match(context[: prompt + i], n_min, n_max, k_max)) for i in range(g)],
                             dtype=np.int64))
    return caps
