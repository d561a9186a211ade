"""MTP draft heads: one pass from the target's last hidden state predicts the next k tokens at once.

The target's hidden state f_p (after its final norm) already yields token p+1 (the bonus token of a
step) through the target's head. Head i (i = 1..k) predicts token p+1+i from f_p and the embedding
of token p+1, without seeing tokens p+2 .. p+i (Medusa-style parallel heads, each a small residual
block, sharing the target's LM head):

    x_i   = fc_i(cat(embed(token_{p+1}), f_p));  x_i = x_i + silu(proj_i(x_i))
    token = argmax(target LM head · norm_i(x_i))

Because later heads cannot see the tokens before them, their acceptance decays with the draft
position — the effect `bench_heads.py` reports per position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from specscope.engine.heads.common import HeadConfig, RMSNorm


class MtpBlock(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        H = cfg.hidden_size
        self.fc = nn.Linear(2 * H, H, bias=False)
        self.proj = nn.Linear(H, H, bias=True)
        self.norm = RMSNorm(H, cfg.rms_norm_eps)

    def forward(self, x):
        x = self.fc(x)
        return self.norm(x + F.silu(self.proj(x)))


class MtpHead(nn.Module):
    kind = "mtp"

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.heads = nn.ModuleList(MtpBlock(cfg) for _ in range(cfg.num_mtp))
        self.d2t = None

    def forward(self, feats, emb, count: int | None = None):
        """feats, emb: [N, H] -> [N, count, H] features for draft positions 1..count."""
        x = torch.cat((emb, feats.to(emb.dtype)), dim=-1)
        return torch.stack([head(x) for head in self.heads[: count or len(self.heads)]], dim=1)

    def logits(self, out, lm_rows):
        return out @ lm_rows.t()
