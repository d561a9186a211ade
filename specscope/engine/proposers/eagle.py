"""EAGLE and EAGLE-3 proposers: a feature-level draft head drafts k tokens from the target's hidden states.

`--method eagle` / `--method eagle3`; `--draft-model DIR` picks a head folder (ours or a published
EAGLE / EAGLE-3 checkpoint, see `heads/checkpoint.py`); without it the head shipped for the target
(the default model's, in `specscope/data/heads/`) is used.

The engine hands over, per sequence, the target features of the tokens committed in the previous
step (`ProposerInput.hidden`: rows for positions len - 1 - n .. len - 2 of the context, i.e. every
token but the newest). The head pairs the feature at position p with token p + 1 and keeps its own
KV cache per slot: `filled[slot]` positions hold entries computed from target features. A step
writes the new positions (one batched catch-up forward over all sequences; its last row drafts
token 1), then feeds its own output back for tokens 2..k, one batched forward each. The draft
entries are overwritten by the next step's catch-up, so rejection needs no bookkeeping.

Greedy drafts are the head's argmax (mapped from the draft vocabulary to target ids); with
temperature > 0 they are sampled and q (zero outside the draft vocabulary) is returned.
"""

from __future__ import annotations

import numpy as np
import torch

from specscope.engine.heads.checkpoint import bundled_head, load_head
from specscope.engine.heads.common import ChunkRunner, aux_layer_outputs, cached_attention, draft_token_ids, target_head_rows
from specscope.engine.kv_cache import KVCache
from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.sampling import draft_confidence, sample, sampling_probs
from specscope.engine.tree import parse_tree
from specscope.engine.tree_growth import grow_tree
from specscope.errors import SpecscopeError


def resolve_head(kind: str, settings, target):
    """Load the head named by --head, or the one shipped for this target."""
    path = settings.proposer.head
    if path is None:
        path = bundled_head(kind, target.config)
        if path is None:
            raise SpecscopeError(
                f"--method {kind}: no {kind} head ships for model '{target.config.name or 'this model'}'; "
                f"train one with `specscope train-head --kind {kind} --model M -o DIR` and pass --head DIR"
            )
    return path, load_head(path, target.config, kind=kind, device=target.device, dtype=target.dtype)


class HeadVocab:
    """Maps a head's logits over its draft vocabulary to target ids (and sampling probabilities)."""

    def __init__(self, d2t, vocab_size: int, device):
        self.vocab_size = vocab_size
        self.ids = None if d2t is None else draft_token_ids(d2t.cpu(), vocab_size).to(device)

    def pick(self, logits, temperature, top_p, generator):
        """logits [B, Vd] -> (target ids [B], q [B, V] or None)."""
        if temperature == 0:
            ids = logits.argmax(dim=-1)
            return (ids if self.ids is None else self.ids[ids]), None
        q = sampling_probs(logits, temperature, top_p)
        ids = sample(q, generator)
        if self.ids is None:
            return ids, q
        full = q.new_zeros(q.shape[0], self.vocab_size)
        full[:, self.ids] = q
        return self.ids[ids], full


class FeatureHeadProposer(Proposer):
    """Shared machinery of the EAGLE-family proposers (see the module docstring)."""

    needs_hidden = True
    supports_tree = True
    kind = ""

    def __init__(self, settings, target=None, tokenizer=None):
        super().__init__(settings)
        if target is None:
            raise ValueError(f"the {self.kind} proposer needs the target model")
        self.target = target
        self.path, self.head = resolve_head(self.kind, settings, target)
        self.temperature, self.top_p = settings.temperature, settings.top_p
        cfg = self.head.cfg
        self.hidden_layers = aux_layer_outputs(cfg.aux_layer_ids, target.config.num_layers) if self.kind == "eagle3" else ()
        d2t = self.head.d2t
        self.vocab = HeadVocab(None if (self.kind == "eagle3" and cfg.draft_vocab_size == cfg.vocab_size and not d2t.any()) else d2t,
                               cfg.vocab_size, target.device)
        # EAGLE reads the target's own LM head: restricted to the draft vocabulary, densified once.
        self.lm_rows = None
        if self.kind == "eagle":
            if d2t is not None:
                self.lm_rows = target_head_rows(target, self.vocab.ids).to(target.dtype)
        self.runner = ChunkRunner(cfg, target.device)
        self.cache: KVCache | None = None
        self.filled: list[int] = []
        self.tree = parse_tree(settings.proposer.tree) if settings.proposer.tree else None  # a tree spec or None

    @property
    def reports_confidence(self) -> bool:  # a chain (a tree drafts whole levels)
        return self.tree is None

    @property
    def label(self) -> str:
        return self.name if self.settings.proposer.head is None else f"{self.name}({self.settings.proposer.head})"

    @property
    def feature_dim(self) -> int:
        """Width of the per-token features the proposer reads (`ProposerInput.hidden`)."""
        return self.target.config.hidden_size * max(len(self.hidden_layers), 1)

    def bind(self, num_slots: int, max_len: int) -> None:
        c = self.head.cfg
        extra = self.tree.expanded if self.tree is not None else 0  # a tree's expanded nodes are written past the root
        self.cache = KVCache(self.head.num_cache_layers, num_slots, max_len + 1 + extra, c.num_kv_heads, c.head_dim,
                             self.target.device, self.target.dtype)
        self.filled = [0] * num_slots

    def reset(self, slot: int) -> None:
        self.cache.reset(slot)
        self.filled[slot] = 0

    def nbytes(self) -> int:
        weights = sum(p.nbytes for p in self.head.parameters()) + sum(b.nbytes for b in self.head.buffers())
        extra = self.lm_rows.nbytes if self.lm_rows is not None else 0
        return weights + extra + (self.cache.nbytes() if self.cache is not None else 0)

    def _logits(self, normed):
        if self.kind == "eagle" and self.lm_rows is None:
            return self.target.lm_head(normed.contiguous()).float()
        return self.head.logits(normed, self.lm_rows).float()

    @torch.inference_mode()
    def _forward(self, slots, tokens, feats, fed: bool, chunks=None):
        """One head forward over ragged chunks; returns (feed-back feature, logits) of each chunk's last row, for
        the chunks `chunks` (indices; None: all) only: the others just bring the head's cache up to date and
        skip the vocabulary projection (~0.9 ms a row for the shipped SmolLM2 EAGLE head on one CPU thread)."""
        batch = self.runner.pack(self.cache, slots, tokens, self.target.dtype)
        emb = self.target.embed(batch.tokens).to(self.target.dtype)
        attends = [cached_attention(*self.cache.layer(i), batch) for i in range(self.head.num_cache_layers)]
        out, normed = self.head.step(feats, emb, batch.cos, batch.sin, attends, fed)
        last = np.cumsum(batch.lens) - 1
        last = torch.tensor(last if chunks is None else last[chunks], device=out.device)
        return out.index_select(0, last), self._logits(normed.index_select(0, last))

    def propose(self, batch: ProposerInput) -> Proposal:
        B, K = len(batch.slots), max(batch.max_draft, default=0)
        device = self.target.device
        draft_ids = torch.zeros(B, K, dtype=torch.long, device=device)
        confidence = torch.zeros(B, K, device=device) if batch.wants_confidence else None
        num_draft = torch.zeros(B, dtype=torch.long)
        draft_probs = None
        hidden = batch.hidden or [None] * B
        rows, slots, tokens, feats = [], [], [], []
        for b, (slot, ctx, hid) in enumerate(zip(batch.slots, batch.contexts, hidden)):
            L = len(ctx)
            if hid is None or len(hid) == 0 or L < 2:
                continue
            first = L - 1 - len(hid)  # position of hid[0]
            start = min(self.filled[slot], L - 2)
            if start < first:  # positions without target features: cannot draft for this sequence
                continue
            self.cache.lengths[slot] = start
            rows.append(b)
            slots.append(slot)
            tokens.append(torch.as_tensor(ctx[start + 1 : L]))
            feats.append(hid[start - first :])
            self.filled[slot] = L - 1
        if not rows:
            parents = None if self.tree is None else torch.full((B, K), -1, dtype=torch.long, device=device)
            return Proposal(draft_ids[:, :0] if K == 0 else draft_ids, num_draft.to(device), parents=parents)
        max_draft = torch.tensor([batch.max_draft[b] for b in rows])
        live = (max_draft > 0).nonzero().squeeze(1)  # indices into rows still drafting
        out, logits = self._forward(slots, tokens, torch.cat(feats).to(device), fed=True, chunks=live.numpy())
        for s in slots:
            self.cache.lengths[s] = self.filled[s]
        if self.tree is not None:
            return self._propose_tree(B, rows, slots, live, max_draft, out, logits)
        rows_t = torch.tensor(rows)
        drafted = torch.zeros(len(rows), dtype=torch.long)
        for j in range(K if len(live) else 0):
            ids, q = self.vocab.pick(logits, self.temperature, self.top_p, batch.generator)
            sure = None if confidence is None else draft_confidence(logits, q, ids)
            at = rows_t[live].to(device)
            keep = max_draft[live] > j
            ids, at = ids[keep.to(ids.device)], at[keep.to(at.device)]
            draft_ids[at, j] = ids
            if sure is not None:
                confidence[at, j] = sure[keep.to(sure.device)]
            drafted[live[keep]] = j + 1
            if q is not None:
                if draft_probs is None:
                    draft_probs = torch.zeros(B, K, q.shape[-1], device=device)
                draft_probs[at, j] = q[keep.to(q.device)]
            live, out = live[keep], out[keep.to(out.device)]
            want = max_draft[live] > j + 1
            if batch.keep_drafting is not None and bool(want.any()):
                going = rows_t[live[want]]
                go = batch.keep_drafting(going.numpy(), confidence[going.to(device), : j + 1].cpu().numpy())
                want[want.nonzero().squeeze(1)] = torch.as_tensor(np.asarray(go, dtype=bool))
            live, out, ids = live[want], out[want.to(out.device)], ids[want.to(ids.device)]
            if len(live) == 0:
                break
            step_slots = [slots[i] for i in live.tolist()]
            out, logits = self._forward(step_slots, list(ids.view(-1, 1)), out, fed=False)
            for s in step_slots:
                self.cache.lengths[s] += 1
        for s in slots:
            self.cache.lengths[s] = self.filled[s]
        num_draft[rows_t] = torch.minimum(max_draft, drafted)
        return Proposal(draft_ids, num_draft.to(device), draft_probs,
                        extra={} if confidence is None else {"confidence": confidence})


    @torch.inference_mode()
    def _propose_tree(self, B: int, rows, slots, live, max_draft, root_out, root_logits) -> Proposal:
        """Draft `self.tree` for the rows `live` (indices into rows/slots) from the catch-up's last rows: the head's
        feature recurrence runs per branch, each level one batched head forward over the frontier nodes with a tree
        attention mask over the head's own draft positions (`ChunkRunner.pack_tree_level`). Deterministic top-k
        children at any temperature: no draft_probs (see `tree_growth.py`)."""
        device, spec = self.target.device, self.tree
        N = spec.num_nodes
        draft_ids = torch.zeros(B, N, dtype=torch.long, device=device)
        parents = torch.full((B, N), -1, dtype=torch.long, device=device)
        num_draft = torch.zeros(B, dtype=torch.long)
        if len(live) == 0:
            return Proposal(draft_ids, num_draft.to(device), parents=parents)
        live_slots = [slots[i] for i in live.tolist()]
        prefix = [self.filled[s] for s in live_slots]  # the root sits at prefix - 1; nodes go after it
        outputs = [root_out[:, None, :]]  # per level: [R, F, H] head outputs of the frontier (level 0: the root)

        def expand(frontier):
            feats = outputs[-1].gather(1, frontier.parent[:, :, None].expand(-1, -1, outputs[-1].shape[-1]))
            batch = self.runner.pack_tree_level(self.cache, live_slots, frontier.tokens, prefix, frontier.fed,
                                                frontier.depth, frontier.ancestors, self.target.dtype)
            emb = self.target.embed(batch.tokens).to(self.target.dtype)
            attends = [cached_attention(*self.cache.layer(i), batch) for i in range(self.head.num_cache_layers)]
            out, normed = self.head.step(feats.reshape(-1, feats.shape[-1]), emb, batch.cos, batch.sin, attends,
                                         fed=False)
            outputs.append(out.view(frontier.tokens.shape + (-1,)))
            return self._logits(normed).view(frontier.tokens.shape + (-1,))

        tokens, tree = grow_tree(spec, root_logits, expand, self.vocab.ids)
        for s in live_slots:
            self.cache.lengths[s] = self.filled[s]
        at = torch.tensor([rows[i] for i in live.tolist()], device=device)
        n = tokens.shape[1]
        draft_ids[at, :n] = tokens
        parents[at, :n] = tree
        num_draft[at.cpu()] = torch.clamp(max_draft[live], max=n)
        return Proposal(draft_ids, num_draft.to(device), parents=parents)


class EagleProposer(FeatureHeadProposer):
    """EAGLE: drafts from the target's last hidden state with a one-layer feature head."""

    name = "eagle"
    kind = "eagle"


class Eagle3Proposer(FeatureHeadProposer):
    """EAGLE-3: fuses low/mid/high target features, drafts from its own outputs."""

    name = "eagle3"
    kind = "eagle3"
