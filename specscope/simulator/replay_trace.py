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

Draft confidences (`confidence`): where the trace records a proposer's `draft_confidence` (its
probability for the token it drafts at each output position, from the context of the output so far,
as `specscope trace` writes it), a step's drafts 1..k at row r have confidences conf[r], ...,
conf[r + k - 1] for as long as the chain follows the output, i.e. for draft j <= acc_len[r] (the
drafts accepted and the first rejected one: their contexts are the output's). After the chain has
left the output the trace cannot know what the proposer would be confident of; `drafted_confidence`
stands in the values recorded at those positions (past the request's end: its last one). This only
prices the drafts a policy that stops on low confidence runs past a rejection (they are rejected
either way). Measured on the default model's self:24 draft (`benchmarks/bench_confidence.py
--off-path 60`: 8 drafts of its own chain past 60 rejections per trace): mean confidence 0.78 off
the output vs 0.80 recorded there (math), 0.74 vs 0.76 (chat); slightly lower off the output, so
the stand-in, if anything, charges such a policy a few drafts too many.
A list entry (several values per position) counts by its first value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specscope.ngram import NAME, ngram_match
from specscope.formats.trace import Trace

NGRAM = NAME  # the proposer whose matches a trace's tokens reveal (and whose misses --ngram-match-prob models)


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
    confidence: np.ndarray | None = None  # [sum(G), P] float draft confidence there (NaN: not recorded); None: none
    confident: np.ndarray | None = None  # [P] bool, the proposers whose confidences are recorded; None: none

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
        confident = np.array([_records_confidence(trace, name) for name in proposers], dtype=bool)
        confidence = _confidence(trace, proposers, confident, gen_len) if confident.any() else None
        return cls(trace.name, proposers, prompt_len, gen_len, offset, acc, trace, draft_cap, confidence,
                   confident if confident.any() else None)

    @property
    def num_requests(self) -> int:
        return len(self.gen_len)

    def rows(self, request: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Row in `acc` that a step at `position` reads (the acc_len at position - 1)."""
        return self.offset[request] + position - 1

    def capped(self, rows: np.ndarray, k: np.ndarray, proposer: np.ndarray) -> np.ndarray:
        """The drafts a decision of k from `proposer` really offers at these rows (k where unknown)."""
        return k if self.draft_cap is None else np.minimum(k, self.draft_cap[rows, proposer])

    def drafted_confidence(self, rows: np.ndarray, k: np.ndarray, proposer: np.ndarray) -> np.ndarray:
        """[n, max k] the confidences of drafts 1..k of a step at these rows (module docstring), NaN past k;
        1 where the trace records none."""
        width = int(k.max(initial=0))
        j = np.arange(width)[None, :]
        out = np.where(j < k[:, None], 1.0, np.nan)
        if self.confidence is not None and width:
            request = np.searchsorted(self.offset, rows, side="right") - 1
            last = (self.offset + self.gen_len - 1)[request]
            at = np.minimum(rows[:, None] + j, last[:, None])
            known = np.nan_to_num(self.confidence[at, proposer[:, None]], nan=1.0)
            out = np.where(j < k[:, None], known, out)
        return out


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


def _confidence(trace: Trace, proposers, have: np.ndarray, gen_len: np.ndarray) -> np.ndarray:
    """[sum(G), P] the trace's draft confidences (NaN for proposers without them)."""
    out = np.full((int(gen_len.sum()), len(proposers)), np.nan)
    start = 0
    for req, g in zip(trace.requests, gen_len):
        for j, name in enumerate(proposers):
            if have[j]:
                values = req.draft_confidence[name][:g]
                out[start:start + g, j] = [(v[0] if v else np.nan) if isinstance(v, list) else v for v in values]
        start += g
    return out


def _records_confidence(trace: Trace, name: str) -> bool:
    """A proposer's confidences are used only if every request records them."""
    return bool(trace.requests) and all(r.draft_confidence and name in r.draft_confidence for r in trace.requests)
