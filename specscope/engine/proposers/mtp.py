"""MTP proposer: multi-token-prediction heads draft k tokens in one pass from the target's last hidden state.

`--method mtp`; `--draft-model DIR` picks a head folder (default: the one shipped for the target).
Per sequence the head reads the target's feature of the second-newest token (the one that produced
the newest, bonus token) and that token's embedding; head i drafts token i after the bonus. The
heads have no cache and no state, and at most `num_mtp` (the heads in the checkpoint) drafts per
step. Per-position acceptance shows how much worse later heads do (`benchmarks/bench_heads.py`).

With `--tree` the heads draft a Medusa-style tree (Cai et al. 2024, "Medusa"): head d's distribution
does not depend on the drafts before it, so every node at depth d - 1 gets the same top-k candidates
from head d, and a dynamic tree ranks paths by the product of the heads' probabilities
(`tree_growth.py`). A tree is at most `num_mtp` drafts deep: a static DxB needs D - 1 <= num_mtp, a
dynamic tree grows at most that deep.
"""

from __future__ import annotations

import torch

from specscope.engine.heads.common import target_head_rows
from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.proposers.eagle import HeadVocab, resolve_head
from specscope.engine.sampling import draft_confidence
from specscope.engine.tree import DynamicTreeSpec, parse_tree
from specscope.engine.tree_growth import grow_tree
from specscope.errors import SpecscopeError


class MtpProposer(Proposer):
    """Parallel MTP heads (see the module docstring)."""

    name = "mtp"
    needs_hidden = True
    supports_tree = True
    hidden_layers = ()

    def __init__(self, settings, target=None, tokenizer=None):
        super().__init__(settings)
        if target is None:
            raise ValueError("the mtp proposer needs the target model")
        self.target = target
        self.path, self.head = resolve_head("mtp", settings, target)
        self.temperature, self.top_p = settings.temperature, settings.top_p
        self.vocab = HeadVocab(self.head.d2t, self.head.cfg.vocab_size, target.device)
        self.lm_rows = target_head_rows(target, self.vocab.ids).to(target.dtype)
        self.tree = self._tree(settings.proposer.tree) if settings.proposer.tree else None

    def _tree(self, spec: str):
        """The tree to draft: a static one no deeper than the heads reach, a dynamic one grown at most that deep."""
        tree, heads = parse_tree(spec), self.head.cfg.num_mtp
        if not tree.dynamic:
            if tree.depth - 1 > heads:
                raise SpecscopeError(f"--tree {spec}: its paths are {tree.depth - 1} drafts deep but the MTP head has "
                                     f"{heads} heads; use a depth <= {heads + 1} (e.g. --tree {heads + 1}x2) or dynamic:N")
            return tree
        depth = min(tree.depth, heads + 1)
        capped = DynamicTreeSpec(tree.nodes, depth, tree.topk)
        return DynamicTreeSpec(min(tree.nodes, capped.candidates), depth, tree.topk)

    @property
    def label(self) -> str:
        return self.name if self.settings.proposer.head is None else f"{self.name}({self.settings.proposer.head})"

    @property
    def feature_dim(self) -> int:
        return self.target.config.hidden_size

    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.head.parameters()) + self.lm_rows.nbytes

    @property
    def reports_confidence(self) -> bool:  # a chain (a tree drafts whole levels)
        return self.tree is None

    @torch.inference_mode()
    def propose(self, batch: ProposerInput) -> Proposal:
        if self.tree is not None:
            return self._propose_tree(batch)
        B = len(batch.slots)
        num_heads = self.head.cfg.num_mtp
        K = min(max(batch.max_draft, default=0), num_heads)
        device = self.target.device
        draft_ids = torch.zeros(B, K, dtype=torch.long, device=device)
        num_draft = torch.zeros(B, dtype=torch.long)
        hidden = batch.hidden or [None] * B
        rows = [b for b, h in enumerate(hidden) if K and h is not None and len(h) and batch.max_draft[b] > 0]
        if not rows:
            return Proposal(draft_ids, num_draft.to(device))
        feats = torch.stack([hidden[b][-1] for b in rows]).to(device=device, dtype=self.target.dtype)
        last = torch.tensor([int(batch.contexts[b][-1]) for b in rows], device=device)
        out = self.head(feats, self.target.embed(last).to(self.target.dtype), count=K)  # [R, K, H]
        logits = self.head.logits(out, self.lm_rows).float()  # [R, K, Vd]
        draft_probs = None
        confidence = torch.zeros(B, K, device=device) if batch.wants_confidence else None
        for j in range(K):
            ids, q = self.vocab.pick(logits[:, j], self.temperature, self.top_p, batch.generator)
            draft_ids[torch.tensor(rows, device=device), j] = ids
            if confidence is not None:
                confidence[torch.tensor(rows, device=device), j] = draft_confidence(logits[:, j], q, ids)
            if q is not None:
                if draft_probs is None:
                    draft_probs = torch.zeros(B, K, q.shape[-1], device=device)
                draft_probs[torch.tensor(rows, device=device), j] = q
        for b in rows:
            num_draft[b] = min(batch.max_draft[b], K)
        return Proposal(draft_ids, num_draft.to(device), draft_probs,
                        extra={} if confidence is None else {"confidence": confidence})

    def _propose_tree(self, batch: ProposerInput) -> Proposal:
        """Draft `self.tree` from the heads' distributions (module docstring); deterministic, no draft_probs."""
        B, N, device = len(batch.slots), self.tree.num_nodes, self.target.device
        draft_ids = torch.zeros(B, N, dtype=torch.long, device=device)
        parents = torch.full((B, N), -1, dtype=torch.long, device=device)
        num_draft = torch.zeros(B, dtype=torch.long)
        hidden = batch.hidden or [None] * B
        rows = [b for b, h in enumerate(hidden) if h is not None and len(h) and batch.max_draft[b] > 0]
        if not rows:
            return Proposal(draft_ids, num_draft.to(device), parents=parents)
        feats = torch.stack([hidden[b][-1] for b in rows]).to(device=device, dtype=self.target.dtype)
        last = torch.tensor([int(batch.contexts[b][-1]) for b in rows], device=device)
        depth = self.tree.depth - 1
        out = self.head(feats, self.target.embed(last).to(self.target.dtype), count=depth)  # [R, depth, H]
        logits = self.head.logits(out, self.lm_rows).float()  # [R, depth, Vd]: head d drafts depth d + 1

        def expand(frontier):  # every node at depth d gets head d's candidates
            return logits[:, frontier.depth, None, :].expand(-1, frontier.tokens.shape[1], -1)

        tokens, tree = grow_tree(self.tree, logits[:, 0], expand, self.vocab.ids)
        at = torch.tensor(rows, device=device)
        n = tokens.shape[1]
        draft_ids[at, :n] = tokens
        parents[at, :n] = tree
        num_draft[torch.tensor(rows)] = torch.clamp(torch.tensor([batch.max_draft[b] for b in rows]), max=n)
        return Proposal(draft_ids, num_draft.to(device), parents=parents)
