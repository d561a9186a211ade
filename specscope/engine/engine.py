"""The speculative-decoding engine: one `step()` drafts, verifies and commits for every running sequence.

    step:  admit queued requests into free slots            (overhead)
           proposer drafts up to k tokens per decoding sequence    (draft)
           one target forward over all sequences: a new sequence's prompt, or a
           decoding sequence's last committed token + its drafts     (verify)
           greedy matching or rejection sampling                   (sample)
           commit accepted + bonus tokens, clip at stops, advance the caches (overhead)

`--method none` is the same loop with a proposer that never drafts, so the baseline and the SD
methods share every line but the proposer. Greedy SD output equals plain greedy decoding token for
token; sampled SD output is distributed as plain sampling (see `verify.py`).

Usage:
    engine = Engine(model, build_proposer("ngram", ProposerOptions(k=5)), EngineConfig(k=5, batch_size=4))
    for seq in engine.generate(requests): ...   # finished sequences, as they finish
    engine.steps                                 # StepRecord per step
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.sampling import sampling_probs
from specscope.engine.scheduler import Request, Scheduler, Sequence
from specscope.engine.timing import StepClock, StepRecord
from specscope.engine.verify import verify_greedy, verify_rejection


@dataclass
class EngineConfig:
    k: int = 3  # draft tokens per step
    batch_size: int = 1  # sequences running at once
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0


# logits: [rows, V] rows of all sequences concatenated (num_draft[b] + 1 per sequence)
# num_draft: [B]
def scatter_rows(flat: torch.Tensor, num_draft: torch.Tensor, K: int) -> torch.Tensor:
    """Right-pad per-sequence rows into [B, K + 1, ...] (padding zero)."""
    rows = torch.arange(K + 1, device=flat.device)[None, :] <= num_draft[:, None]  # [B, K + 1]
    padded = flat.new_zeros((num_draft.shape[0], K + 1) + flat.shape[1:])
    padded[rows] = flat
    return padded


class Engine:
    """Continuous-batching SD engine over a `DecoderModel` and one proposer."""

    def __init__(self, model, proposer: Proposer, config: EngineConfig, stop_token_ids=()):
        if config.k < 0:
            raise ValueError("k must be >= 0")
        self.model, self.proposer, self.config = model, proposer, config
        self.stop_ids = np.array(sorted(set(int(t) for t in stop_token_ids)), dtype=np.int64)
        self.device = model.device
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.clock = StepClock(self.device)
        self.steps: list[StepRecord] = []
        self.cache = None
        self.scheduler: Scheduler | None = None

    def _setup(self, requests: list[Request]) -> None:
        cfg = self.config
        extra = cfg.k + 1
        self.scheduler = Scheduler(requests, cfg.batch_size, cfg.max_new_tokens, self.model.config.max_position, extra)
        fitting = [self.scheduler.capacity(r) for r in requests if self.scheduler.check(r) is None]
        max_len = max(fitting, default=1)
        self.cache = self.model.new_cache(cfg.batch_size, max_len)
        self.proposer.bind(cfg.batch_size, max_len)
        self.steps = []

    def generate(self, requests: list[Request]) -> Iterator[Sequence]:
        """Run all requests; yield each sequence when it finishes (errors included, with `seq.error`)."""
        self._setup(requests)
        while not self.scheduler.done:
            self.step()
            yield from self.scheduler.take_finished()
        yield from self.scheduler.take_finished()

    def kv_cache_nbytes(self) -> int:
        return self.cache.nbytes() if self.cache is not None else 0

    def step(self) -> None:
        """One verification step for every running sequence (see the module docstring)."""
        cfg, clock, cache = self.config, self.clock, self.cache
        clock.start()
        for seq in self.scheduler.admit():
            cache.reset(seq.slot)
            self.proposer.reset(seq.slot)
        seqs = self.scheduler.running
        if not seqs:
            return
        prefill = [s.num_output == 0 for s in seqs]
        slots = [s.slot for s in seqs]
        kv_tokens = sum(s.cached for s in seqs)
        clock.lap("overhead")

        proposal = self.proposer.propose(
            ProposerInput(
                slots=slots,
                contexts=[s.context for s in seqs],
                max_draft=[0 if p else cfg.k for p in prefill],
                generator=self.generator,
                hidden=[s.hidden for s in seqs] if self.proposer.needs_hidden else None,
            )
        )
        clock.lap("draft")

        num_draft = proposal.num_draft.tolist()
        drafts = proposal.draft_ids.cpu().numpy()
        chunks = [np.concatenate((s.context[s.cached :], drafts[b, :n])) for b, (s, n) in enumerate(zip(seqs, num_draft))]
        out = self.model.forward_chunks(cache, slots, chunks, num_logits=[n + 1 for n in num_draft])
        clock.lap("verify")

        num_accepted, tokens = self._verify(out.logits, proposal)
        accepted, tokens = num_accepted.tolist(), tokens.cpu().numpy()
        clock.lap("sample")

        committed = accepted_total = 0
        for b, seq in enumerate(seqs):
            kept = seq.commit(tokens[b, : accepted[b] + 1], self.stop_ids)
            if not prefill[b]:
                seq.proposed.append(num_draft[b])
                seq.accepted.append(kept - 1)
                accepted_total += kept - 1
            committed += kept
            seq.cached = seq.length - 1  # K/V of every committed token but the newest
            cache.lengths[seq.slot] = seq.cached
            if self.proposer.needs_hidden:
                seq.hidden = out.hidden[b][: accepted[b] + 1]
        self.scheduler.retire()
        seconds = clock.stop()
        self.steps.append(
            StepRecord(
                **seconds,
                num_seqs=len(seqs),
                num_prefill=sum(prefill),
                num_batched_tokens=sum(len(c) for c in chunks),
                num_kv_tokens=kv_tokens,
                proposed=sum(num_draft),
                accepted=accepted_total,
                committed=committed,
            )
        )

    def _verify(self, logits: list[torch.Tensor], proposal: Proposal):
        """Greedy or rejection-sampling verification of the step's drafts; returns (num_accepted [B], tokens [B, K+1])."""
        cfg = self.config
        draft_ids = proposal.draft_ids.to(self.device)
        num_draft = proposal.num_draft.to(self.device)
        K = draft_ids.shape[1]
        flat = torch.cat(logits)  # [sum(num_draft + 1), V]
        if cfg.temperature == 0:
            return verify_greedy(scatter_rows(flat.argmax(dim=-1), num_draft, K), draft_ids, num_draft)
        probs = scatter_rows(sampling_probs(flat, cfg.temperature, cfg.top_p), num_draft, K)
        return verify_rejection(probs, draft_ids, num_draft, proposal.draft_probs, self.generator)
