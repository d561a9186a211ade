"""MTP proposer: multi-token-prediction heads draft k tokens in one pass from the target's last hidden state.

`--method mtp`; `--draft-model DIR` picks a head folder (default: the one shipped for the target).
Per sequence the head reads the target's feature of the second-newest token (the one that produced
the newest, bonus token) and that token's embedding; head i drafts token i after the bonus. The
heads have no cache and no state, and at most `num_mtp` (the heads in the checkpoint) drafts per
step. Per-position acceptance shows how much worse later heads do (`benchmarks/bench_heads.py`).
"""

from __future__ import annotations

import torch

from specscope.engine.heads.common import target_head_rows
from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.proposers.eagle import HeadVocab, resolve_head
from specscope.engine.sampling import draft_confidence


class MtpProposer(Proposer):
    """Parallel MTP heads (see the module docstring)."""

    name = "mtp"
    needs_hidden = True
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

    @property
    def label(self) -> str:
        return self.name if self.settings.proposer.head is None else f"{self.name}({self.settings.proposer.head})"

    @property
    def feature_dim(self) -> int:
        return self.target.config.hidden_size

    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.head.parameters()) + self.lm_rows.nbytes

    @torch.inference_mode()
    def propose(self, batch: ProposerInput) -> Proposal:
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
