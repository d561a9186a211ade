"""Draft-model proposer: a smaller causal LM sharing the target's tokenizer drafts k tokens.

`--draft-model self:L` uses the target's own first L layers + final norm + head (a layer-truncated
self-draft, labelled `draft(self:L)` in outputs); `--draft-model PATH` loads a separate model, which
must use the same tokenizer. Either way the draft keeps its own KV cache with one slot per sequence.

Keeping that cache in sync needs no messages from the engine: the proposer remembers which tokens it
wrote into each slot (the context it last saw plus the drafts it fed back in). At the next step the
longest common prefix of those tokens and the new context is still valid — the accepted drafts
are there already — and the rest of the context (at least the bonus token) is fed as the catch-up
chunk of the step's first draft forward, batched with every other sequence's catch-up.

Greedy (temperature 0) drafts are the draft's argmax and deterministic; otherwise each draft token is
sampled from q = sampling_probs(draft logits) and q is returned for rejection sampling.

With `--tree DxB` (the settings' `tree`, see `tree.py`) it drafts a full tree level by level, one
draft forward per level: each node gets the draft's top-B tokens as children (greedy; most probable
first), or B tokens drawn i.i.d. from q (sampling; each child's q is its parent's distribution).
Level l's forward feeds every node drafted so far as one tree chunk after the context, so a tree step
leaves nothing in the draft cache to reuse beyond the context itself. A dynamic tree (`--tree
dynamic:N`) grows the same way from the draft's top-k by cumulative probability (`tree_growth.py`),
feeding the expanded nodes and the frontier each level; its children are deterministic at any
temperature (no q), as `verify_tree_rejection` assumes of drafts without draft_probs.
"""

from __future__ import annotations

import numpy as np
import torch

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.sampling import draft_confidence, sample, sampling_probs
from specscope.engine.tree import parse_tree
from specscope.engine.tree_growth import grow_tree
from specscope.errors import SpecscopeError

def parse_self_draft(spec: str, target_layers: int) -> int | None:
    """Layers L of a 'self:L' spec (None when `spec` names a model instead)."""
    if not spec.startswith("self:"):
        return None
    try:
        layers = int(spec[5:])
    except ValueError:
        layers = 0
    if not 1 <= layers < target_layers:
        raise SpecscopeError(
            f"--draft-model '{spec}': a self-draft needs 1 <= L < {target_layers} (the target's layer count); "
            "e.g. --draft-model self:8"
        )
    return layers


def same_tokenizer(a, b) -> bool:
    """Whether two tokenizers map the same strings to the same ids."""
    return a is b or a.get_vocab() == b.get_vocab()


# context: [L] committed tokens; fed: [m] drafts written after the previous context of length base
def reusable_prefix(context: np.ndarray, base: int, fed: np.ndarray) -> int:
    """Positions of the draft cache still valid for `context` (always leaves its last token to feed)."""
    tail = context[base : base + len(fed)]
    agree = np.flatnonzero(tail != fed[: len(tail)])
    lcp = int(agree[0]) if agree.size else len(tail)
    return min(base + lcp, len(context) - 1)


class DraftModelProposer(Proposer):
    """Drafts with a separate small model or the target's first L layers (`--draft-model`)."""

    name = "draft"
    supports_tree = True

    def __init__(self, settings, target=None, tokenizer=None):
        super().__init__(settings)
        if target is None:
            raise ValueError("the draft proposer needs the target model")
        self.spec = settings.proposer.draft_model
        self.temperature, self.top_p = settings.temperature, settings.top_p
        layers = parse_self_draft(self.spec, target.config.num_layers)
        if layers is not None:
            self.model, self.num_layers, self.own_weights = target, layers, False
        else:
            draft = load_draft(self.spec, target, tokenizer, settings.device)
            self.model, self.num_layers, self.own_weights = draft, None, True
        self.tree = parse_tree(settings.proposer.tree) if settings.proposer.tree else None  # TreeSpec or None
        self.cache = None
        self.base: list[int] = []  # per slot: context length when it last drafted
        self.fed: list[np.ndarray] = []  # per slot: drafts written after that context

    @property
    def label(self) -> str:
        return f"draft({self.spec})"

    @property
    def shift_consistent(self) -> bool:  # a greedy draft continues its own chain
        return self.temperature == 0

    @property
    def reports_confidence(self) -> bool:  # a chain (a tree drafts whole levels)
        return self.tree is None

    def bind(self, num_slots: int, max_len: int) -> None:
        extra = self.tree.expanded + self.tree.topk if self.tree is not None and self.tree.dynamic else 0
        self.cache = self.model.new_cache(num_slots, max_len + extra, num_layers=self.num_layers)
        self.base = [0] * num_slots
        self.fed = [np.zeros(0, dtype=np.int64)] * num_slots

    def reset(self, slot: int) -> None:
        self.cache.reset(slot)
        self.base[slot], self.fed[slot] = 0, np.zeros(0, dtype=np.int64)

    def nbytes(self) -> int:
        weights = self.model.weight_nbytes() if self.own_weights else 0
        return weights + (self.cache.nbytes() if self.cache is not None else 0)

    # logits: [B, V] -> ids [B], q [B, V] or None
    def _pick(self, logits: torch.Tensor, generator):
        if self.temperature == 0:
            return logits.argmax(dim=-1), None
        q = sampling_probs(logits, self.temperature, self.top_p)
        return sample(q, generator), q

    def propose(self, batch: ProposerInput) -> Proposal:
        B, K = len(batch.slots), max(batch.max_draft, default=0)
        if K == 0:
            return Proposal.from_lists([np.zeros(0, dtype=np.int64)] * B)
        if self.tree is not None:
            return self._propose_dynamic_tree(batch) if self.tree.dynamic else self._propose_tree(batch)
        device, cache = self.model.device, self.cache
        slots = torch.tensor(batch.slots)
        ctx_lens = torch.tensor([len(c) for c in batch.contexts])
        valid = [reusable_prefix(c, self.base[s], self.fed[s]) for s, c in zip(batch.slots, batch.contexts)]
        cache.lengths[slots] = torch.tensor(valid)
        chunks = [c[v:] for c, v in zip(batch.contexts, valid)]  # catch-up: at least the bonus token
        max_draft = torch.tensor(batch.max_draft)

        draft_ids = torch.zeros(B, K, dtype=torch.long, device=device)
        confidence = torch.zeros(B, K, device=device) if batch.wants_confidence else None
        draft_probs = None
        drafted = torch.zeros(B, dtype=torch.long)  # draft tokens computed per row
        rows, active = torch.arange(B), batch.slots  # sequences still drafting, and their slots
        for j in range(K):
            out = self.model.forward_chunks(cache, active, chunks, self.num_layers, num_logits=[1] * len(chunks))
            cache.lengths[slots[rows]] += torch.tensor([len(c) for c in chunks])
            logits = torch.cat(out.logits)
            ids, q = self._pick(logits, batch.generator)
            at = rows.to(device)
            draft_ids[at, j] = ids
            if confidence is not None:
                confidence[at, j] = draft_confidence(logits, q, ids)
            drafted[rows] = j + 1
            if q is not None:
                if draft_probs is None:
                    draft_probs = torch.zeros(B, K, q.shape[-1], device=device)
                draft_probs[at, j] = q
            rows = rows[max_draft[rows] > j + 1]  # sequences that want another draft token
            if len(rows) and batch.keep_drafting is not None:
                go = batch.keep_drafting(rows.numpy(), confidence[rows.to(device), : j + 1].cpu().numpy())
                rows = rows[torch.as_tensor(np.asarray(go, dtype=bool))]
            if len(rows) == 0:
                break
            active = slots[rows].tolist()
            chunks = list(draft_ids[rows.to(device), j : j + 1])  # feed back the token just drafted

        # Remember what the cache now holds: the context plus the drafts fed back in (all but the last).
        draft_host = draft_ids.cpu().numpy()
        for b, slot in enumerate(batch.slots):
            self.base[slot] = len(batch.contexts[b])
            self.fed[slot] = draft_host[b, : max(int(drafted[b]) - 1, 0)].copy()
        cache.lengths[slots] = ctx_lens  # committed length; the fed drafts stay in the buffer for reuse
        num_draft = torch.minimum(max_draft, drafted).to(device)
        return Proposal(draft_ids, num_draft, draft_probs, extra={} if confidence is None else {"confidence": confidence})


    # logits: [R, V] -> children ids [R, branching], q [R, V] or None
    def _children(self, logits: torch.Tensor, branching: int, generator):
        if self.temperature == 0:
            return logits.topk(branching, dim=-1).indices, None
        q = sampling_probs(logits, self.temperature, self.top_p)
        return torch.multinomial(q, branching, replacement=True, generator=generator), q

    def _propose_tree(self, batch: ProposerInput) -> Proposal:
        """Draft `self.tree` for every sequence with max_draft > 0 (the first max_draft nodes count)."""
        tree, B, device, cache = self.tree, len(batch.slots), self.model.device, self.cache
        T, branching, tree_parents = tree.num_nodes, tree.branching, tree.parents
        slots = torch.tensor(batch.slots)
        ctx_lens = torch.tensor([len(c) for c in batch.contexts])
        valid = [reusable_prefix(c, self.base[s], self.fed[s]) for s, c in zip(batch.slots, batch.contexts)]
        cache.lengths[slots] = torch.tensor(valid)
        out = self.model.forward_chunks(cache, batch.slots, [c[v:] for c, v in zip(batch.contexts, valid)],
                                        self.num_layers, num_logits=[1] * B)
        cache.lengths[slots] = ctx_lens  # the catch-up is committed context; tree nodes go after it
        active = [b for b in range(B) if batch.max_draft[b] > 0]
        logits = torch.cat(out.logits)[torch.tensor(active, device=device)]  # [rows, V]: the root of each tree
        draft_ids = torch.zeros(B, T, dtype=torch.long, device=device)
        draft_probs = None
        at = torch.tensor(active, device=device)
        for level in tree.levels():
            ids, q = self._children(logits, branching, batch.generator)  # [len(active) * parents, branching]
            draft_ids[at, level.start : level.stop] = ids.reshape(len(active), len(level))
            if q is not None:
                if draft_probs is None:
                    draft_probs = torch.zeros(B, T, q.shape[-1], device=device)
                draft_probs[at, level.start : level.stop] = q.repeat_interleave(branching, dim=0).reshape(
                    len(active), len(level), -1)
            if level.stop == T:
                break
            # Score this level's nodes: feed the whole tree so far after the context (nodes sit at chunk offsets).
            out = self.model.forward_chunks(
                cache, [batch.slots[b] for b in active], list(draft_ids[at, : level.stop]), self.num_layers,
                num_logits=[len(level)] * len(active), trees=[tree_parents[: level.stop]] * len(active),
            )
            logits = torch.cat(out.logits)
        for b, slot in enumerate(batch.slots):
            self.base[slot], self.fed[slot] = len(batch.contexts[b]), np.zeros(0, dtype=np.int64)
        num_draft = torch.tensor([min(m, T) for m in batch.max_draft]).to(device)
        parents = torch.from_numpy(tree_parents).to(device).expand(B, T).clone()
        return Proposal(draft_ids, num_draft, draft_probs, parents=parents)


    def _catch_up(self, batch: ProposerInput):
        """Feed each context's uncached tail; returns the draft's logits after each context [B, V] (the roots)."""
        slots, B = torch.tensor(batch.slots), len(batch.slots)
        valid = [reusable_prefix(c, self.base[s], self.fed[s]) for s, c in zip(batch.slots, batch.contexts)]
        self.cache.lengths[slots] = torch.tensor(valid)
        out = self.model.forward_chunks(self.cache, batch.slots, [c[v:] for c, v in zip(batch.contexts, valid)],
                                        self.num_layers, num_logits=[1] * B)
        self.cache.lengths[slots] = torch.tensor([len(c) for c in batch.contexts])  # tree nodes go after the context
        for b, slot in enumerate(batch.slots):
            self.base[slot], self.fed[slot] = len(batch.contexts[b]), np.zeros(0, dtype=np.int64)
        return torch.cat(out.logits)

    def _propose_dynamic_tree(self, batch: ProposerInput) -> Proposal:
        """Grow `self.tree` (dynamic) for every sequence with max_draft > 0: each level feeds the expanded nodes and
        the frontier as one tree chunk after the context and reads the frontier's logits."""
        B, N, device = len(batch.slots), self.tree.num_nodes, self.model.device
        roots = self._catch_up(batch)
        draft_ids = torch.zeros(B, N, dtype=torch.long, device=device)
        parents = torch.full((B, N), -1, dtype=torch.long, device=device)
        active = [b for b in range(B) if batch.max_draft[b] > 0]
        if active:
            slots = [batch.slots[b] for b in active]

            def expand(frontier):
                tokens = torch.cat((frontier.fed_tokens, frontier.tokens), dim=1)
                tree = torch.cat((frontier.fed_parents, frontier.parent_fed), dim=1).cpu().numpy()
                F = frontier.tokens.shape[1]
                out = self.model.forward_chunks(self.cache, slots, list(tokens), self.num_layers,
                                                num_logits=[F] * len(slots), trees=list(tree))
                return torch.stack(out.logits)

            at = torch.tensor(active, device=device)
            tokens, tree = grow_tree(self.tree, roots[at], expand)
            draft_ids[at, : tokens.shape[1]] = tokens
            parents[at, : tokens.shape[1]] = tree
        num_draft = torch.tensor([min(m, N) if m > 0 else 0 for m in batch.max_draft]).to(device)
        return Proposal(draft_ids, num_draft, parents=parents)


def load_draft(spec: str, target, target_tokenizer, device):
    """Load a separate draft model and check that it shares the target's tokenizer."""
    from specscope.engine.loading import load_model

    model, tokenizer = load_model(spec, device=device, dtype=target.dtype, tokenizer=target_tokenizer is not None)
    if target_tokenizer is not None and not same_tokenizer(tokenizer, target_tokenizer):
        raise SpecscopeError(
            f"draft model '{spec}' uses a different tokenizer than the target; "
            "a draft must share the target's tokenizer (pick one from the same model family, or use --draft-model self:L)"
        )
    if model.config.vocab_size != target.config.vocab_size:
        raise SpecscopeError(
            f"draft model '{spec}' has a vocabulary of {model.config.vocab_size} tokens but the target has "
            f"{target.config.vocab_size}; a draft must share the target's tokenizer"
        )
    return model
