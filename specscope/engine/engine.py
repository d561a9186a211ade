"""The speculative-decoding engine: one `step()` drafts, verifies and commits for every running sequence.

    step:  admit queued requests into free slots            (overhead)
           proposer drafts up to k tokens per decoding sequence    (draft)
           one target forward over all sequences: a new sequence's prompt, or a
           decoding sequence's last committed token + its drafts     (verify)
           greedy matching or rejection sampling                   (sample)
           commit accepted + bonus tokens, clip at stops, advance the caches (overhead)

With `Engine.tree` (`--tree DxB`, a preset `6` / `21`, or `dynamic:N`) the proposer drafts a tree
(`Proposal.parents`, per row: a dynamic tree differs per sequence and step): the verify forward scores
all its nodes at once with a tree attention mask (`tree.py`), verification keeps the longest accepted
root-to-leaf path, and the path's K/V are moved to consecutive cache positions.

`--method none` is the same loop with a proposer that never drafts, so the baseline and the SD
methods share every line but the proposer. Greedy SD output equals plain greedy decoding token for
token; sampled SD output is distributed as plain sampling (see `verify.py`).

Usage:
    settings = RunSettings.build(method="ngram", k=5, batch_size=4)
    engine = Engine(model, build_proposer("ngram", settings), settings)
    for seq in engine.generate(requests): ...   # finished sequences, as they finish
    engine.start(max_len); engine.submit(request); engine.step(); engine.cancel(id)   # serving: requests join
    engine.steps                                 # StepRecord per step
    Engine.plain(model, RunSettings(batch_size=4))   # plain decoding (no proposer)

The engine reads from the run's settings (`specscope/settings.py`) the batch size, the draft budget
(`RunSettings.draft_budget`: 0 for plain decoding), the tree, sampling (temperature, top-p, seed) and
the output limit of requests that carry none.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from specscope.engine.drafting import Drafter
from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.sampling import sampling_probs
from specscope.engine.scheduler import Request, Scheduler, Sequence
from specscope.engine.timing import StepClock, StepRecord
from specscope.engine.tree import chunk_parents, parse_tree
from specscope.engine.verify import verify_greedy, verify_rejection, verify_tree_greedy, verify_tree_rejection
from specscope.errors import SpecscopeError
from specscope.policy.fixed import FixedK
from specscope.settings import BASELINE, RunSettings

DEFAULT_MAX_NEW_TOKENS = 128  # output limit of a request that carries none, when the settings give none


# logits: [rows, V] rows of all sequences concatenated (num_draft[b] + 1 per sequence)
# num_draft: [B]
def scatter_rows(flat: torch.Tensor, num_draft: torch.Tensor, K: int) -> torch.Tensor:
    """Right-pad per-sequence rows into [B, K + 1, ...] (padding zero)."""
    rows = torch.arange(K + 1, device=flat.device)[None, :] <= num_draft[:, None]  # [B, K + 1]
    padded = flat.new_zeros((num_draft.shape[0], K + 1) + flat.shape[1:])
    padded[rows] = flat
    return padded


def tree_chunks(chunks, num_draft: list[int], parents: torch.Tensor) -> list[np.ndarray]:
    """Chunk parents (`tree.chunk_parents`) of each verification chunk: committed tokens, then the draft tree."""
    parents = parents.cpu().numpy()
    return [chunk_parents(len(c) - n, parents[b, :n]) if n else None for b, (c, n) in enumerate(zip(chunks, num_draft))]


def path_rows(num_chain: int, path: list[int]) -> np.ndarray:
    """Chunk rows of the committed tokens' last chain token and the accepted path (root first)."""
    return np.array([num_chain - 1] + [num_chain + j for j in path], dtype=np.int64)


def proposer_features(out, index: int, layers=()) -> torch.Tensor:
    """Features of chunk `index` a hidden-state proposer reads: the last hidden state [n, H], or the
    outputs of `layers` concatenated [n, len(layers) * H] (EAGLE-3's low/mid/high features)."""
    if not layers:
        return out.hidden[index]
    return torch.cat([out.layer_hidden[layer][index] for layer in layers], dim=-1)


class Engine:
    """Continuous-batching SD engine over a `DecoderModel` and one proposer."""

    def __init__(self, model, proposer: Proposer | Drafter, settings: RunSettings, stop_token_ids=()):
        """`proposer`: one proposer drafting a fixed k (the settings' draft budget) every step, or a `Drafter`
        whose policy decides per sequence and step (`--k adaptive`)."""
        self.model, self.settings = model, settings
        # draft tree (tree.py): the proposer drafts up to tree.num_nodes per step; None = a chain
        self.tree = parse_tree(settings.proposer.tree) if settings.proposer.tree and settings.speculates else None
        self.draft_budget = settings.draft_budget if self.tree is None else self.tree.num_nodes  # per sequence and step
        if not isinstance(proposer, Drafter):
            proposer = Drafter({proposer.name: proposer}, FixedK((proposer.name,), self.draft_budget))
        self.drafter = proposer
        if self.tree is not None and not self.drafter.supports_tree:
            raise SpecscopeError(
                f"--tree {settings.proposer.tree}: method '{self.drafter.name}' proposes a single continuation and "
                "cannot draft a tree; use --method draft, eagle, eagle3 or mtp (or drop --tree)"
            )
        # target layers whose outputs the proposers read as features (EAGLE-3); () = the last hidden state
        self.feature_layers = self.drafter.hidden_layers
        self.stop_ids = np.array(sorted(set(int(t) for t in stop_token_ids)), dtype=np.int64)
        self.device = model.device
        self.generator = torch.Generator(device=self.device).manual_seed(settings.seed)
        self.clock = StepClock(self.device)
        self.steps: list[StepRecord] = []
        self.cache = None
        self.scheduler: Scheduler | None = None

    @classmethod
    def plain(cls, model, settings: RunSettings, stop_token_ids=()) -> "Engine":
        """Plain decoding: the same loop with a proposer that never drafts (`settings`' proposer is ignored)."""
        from specscope.engine.proposers.none import NoProposer

        plain = settings.replace(method=BASELINE, tree=None)
        return cls(model, NoProposer(plain), plain, stop_token_ids)

    def _setup(self, requests: list[Request], max_len: int | None = None) -> None:
        """A scheduler over `requests` and a cache of `max_len` positions per slot (None: the longest that fits)."""
        batch, extra = self.settings.batch_size, self.draft_budget + 1
        max_new = self.settings.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        context = self.model.config.max_position if max_len is None else min(self.model.config.max_position, max_len - extra)
        self.scheduler = Scheduler(requests, batch, max_new, context, extra)
        if max_len is None:
            fitting = [self.scheduler.capacity(r) for r in requests if self.scheduler.check(r) is None]
            max_len = max(fitting, default=1)
        self.cache = self.model.new_cache(batch, max_len)
        self.drafter.bind(batch, max_len)
        self.steps = []

    def generate(self, requests: list[Request]) -> Iterator[Sequence]:
        """Run all requests; yield each sequence when it finishes (errors included, with `seq.error`)."""
        self._setup(requests)
        while not self.scheduler.done:
            self.step()
            yield from self.scheduler.take_finished()
        yield from self.scheduler.take_finished()

    # Serving: requests join a running engine (`specscope serve` drives `step` from its own loop).

    def start(self, max_len: int) -> None:
        """Open-ended serving: no requests yet; `submit` queues them while the caller runs `step` until `idle`.
        Each slot's cache holds `max_len` positions; a request whose prompt + max_new_tokens + a step's
        lookahead do not fit finishes at once with an error, as in `generate`."""
        self._setup([], max_len)

    def submit(self, request: Request) -> None:
        """Queue a request; the next `step` admits it into a free slot (its prefill joins the running batch)."""
        self.scheduler.queue.append(request)

    def cancel(self, request_id: str) -> bool:
        """Stop request `request_id` now (its client went away): it finishes with finish_reason 'cancelled' and
        frees its slot. False if it is neither queued nor running. Call between steps."""
        return self.scheduler.cancel(request_id)

    @property
    def idle(self) -> bool:
        """No request is queued or running."""
        return self.scheduler is None or self.scheduler.done

    def kv_cache_nbytes(self) -> int:
        return self.cache.nbytes() if self.cache is not None else 0

    def step(self) -> None:
        """One verification step for every running sequence (see the module docstring)."""
        clock, cache = self.clock, self.cache
        clock.start()
        for seq in self.scheduler.admit():
            cache.reset(seq.slot)
            self.drafter.reset(seq.slot)
        seqs = self.scheduler.running
        if not seqs:
            return
        prefill = [s.num_output == 0 for s in seqs]
        slots = [s.slot for s in seqs]
        kv_tokens = sum(s.cached for s in seqs)
        clock.lap("overhead")

        proposal = self.drafter.propose(
            ProposerInput(
                slots=slots,
                contexts=[s.context for s in seqs],
                max_draft=[0 if p else self.draft_budget for p in prefill],
                generator=self.generator,
                hidden=[s.hidden for s in seqs] if self.drafter.needs_hidden else None,
            )
        )
        clock.lap("draft")

        num_draft = proposal.num_draft.tolist()
        drafts = proposal.draft_ids.cpu().numpy()
        chunks = [np.concatenate((s.context[s.cached :], drafts[b, :n])) for b, (s, n) in enumerate(zip(seqs, num_draft))]
        starts = [s.cached for s in seqs]  # cache index of each chunk's first token
        trees = None if proposal.parents is None else tree_chunks(chunks, num_draft, proposal.parents)
        out = self.model.forward_chunks(cache, slots, chunks, num_logits=[n + 1 for n in num_draft], trees=trees,
                                        hidden_layers=self.feature_layers)
        clock.lap("verify")

        if trees is None:
            num_accepted, tokens = self._verify(out.logits, proposal)
            accepted, tokens, paths = num_accepted.tolist(), tokens.cpu().numpy(), None
        else:
            accepted, tokens, paths = self._verify_tree(out.logits, proposal)
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
            rows = None if trees is None or trees[b] is None else path_rows(len(chunks[b]) - num_draft[b], paths[b])
            if rows is not None:  # tree: move the accepted path's K/V from chunk offsets to consecutive positions
                src, dst = starts[b] + rows[1:], starts[b] + rows[0] + np.arange(1, len(rows))
                if not np.array_equal(src, dst):
                    cache.move(seq.slot, src, dst)
            if self.drafter.needs_hidden:
                feats = proposer_features(out, b, self.feature_layers)
                fed = len(chunks[b]) - num_draft[b]  # committed tokens in the chunk: their features, then the accepted drafts'
                seq.hidden = (feats[: fed + accepted[b]] if rows is None
                              else torch.cat((feats[: fed - 1], feats[torch.from_numpy(rows)])))
        decoding = [s for s, p in zip(seqs, prefill) if not p]  # the drafter's rows, in its order
        self.drafter.observe(np.array([s.accepted[-1] for s in decoding], dtype=np.int64),
                             np.array([s.finished for s in decoding], dtype=bool))
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
                decision=self.drafter.take_decision_seconds(),
            )
        )
        self.drafter.observe_step(self.steps[-1])

    def _verify_tree(self, logits: list[torch.Tensor], proposal: Proposal):
        """Tree verification, one sequence at a time; returns (accepted [B], tokens [B, K+1], paths [B])."""
        temperature, top_p = self.settings.temperature, self.settings.top_p
        num = proposal.num_draft.tolist()
        drafts, parents = proposal.draft_ids.cpu().numpy(), proposal.parents.cpu().numpy()
        tokens = np.zeros((len(num), drafts.shape[1] + 1), dtype=np.int64)
        paths = []
        if temperature == 0:
            target = torch.cat(logits).argmax(dim=-1).cpu().numpy()
            offsets = np.cumsum([0] + [n + 1 for n in num])
        for b, n in enumerate(num):
            if temperature == 0:
                path, toks = verify_tree_greedy(target[offsets[b] : offsets[b + 1]], drafts[b, :n], parents[b, :n])
            else:
                q = None if proposal.draft_probs is None else proposal.draft_probs[b, :n].to(self.device)
                p = sampling_probs(logits[b], temperature, top_p)
                path, toks = verify_tree_rejection(p, drafts[b, :n], parents[b, :n], q, self.generator)
            tokens[b, : len(toks)] = toks
            paths.append(path)
        return [len(p) for p in paths], tokens, paths

    def _verify(self, logits: list[torch.Tensor], proposal: Proposal):
        """Greedy or rejection-sampling verification of the step's drafts; returns (num_accepted [B], tokens [B, K+1])."""
        temperature, top_p = self.settings.temperature, self.settings.top_p
        draft_ids = proposal.draft_ids.to(self.device)
        num_draft = proposal.num_draft.to(self.device)
        K = draft_ids.shape[1]
        flat = torch.cat(logits)  # [sum(num_draft + 1), V]
        if temperature == 0:
            return verify_greedy(scatter_rows(flat.argmax(dim=-1), num_draft, K), draft_ids, num_draft)
        probs = scatter_rows(sampling_probs(flat, temperature, top_p), num_draft, K)
        return verify_rejection(probs, draft_ids, num_draft, proposal.draft_probs, self.generator)
