"""EAGLE-3 draft head: fuses low, middle and high target-layer features and drafts from its own outputs.

    g_p   = fc(cat(a_p^low, a_p^mid, a_p^high))       target features (inputs of layers 2, L/2, L-3)
    h_p   = midlayer(cat(norm(embed(token_{p+1})), norm(g_p)))    one decoder layer, residual g_p
    token = d2t-mapped argmax(lm_head(norm(h_p)))       its own head over a reduced draft vocabulary

At draft step j > 0 the fused target features are replaced by the head's own previous output h.
Trained with training-time test (its own outputs fed back for several steps), so acceptance holds up
deeper into the draft. Parameter names are the published EAGLE-3 checkpoint's: `fc.weight`,
`midlayer.*` (with `hidden_norm`), `norm.weight`, `lm_head.weight`, `d2t`, `t2d`.
"""

from __future__ import annotations

import torch
from torch import nn

from specscope.engine.heads.common import HeadConfig, HeadLayer, RMSNorm, train_attention, train_rope


class Eagle3Head(nn.Module):
    kind = "eagle3"

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden_size
        self.fc = nn.Linear(3 * H, H, bias=False)
        self.midlayer = HeadLayer(cfg, fused_input=True)
        self.norm = RMSNorm(H, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(H, cfg.draft_vocab_size, bias=False)
        self.register_buffer("d2t", torch.zeros(cfg.draft_vocab_size, dtype=torch.long))
        self.register_buffer("t2d", torch.ones(cfg.vocab_size, dtype=torch.bool))

    @property
    def num_cache_layers(self) -> int:
        return 1

    def feature_dim(self, target_hidden: int) -> int:
        return 3 * target_hidden

    def step(self, feats, emb, cos, sin, attends, fed: bool):
        x = self.fc(feats.to(emb.dtype)) if fed else feats
        out = self.midlayer(x, emb, cos, sin, attends[0])
        return out, self.norm(out)

    def logits(self, out, lm_rows=None):
        return self.lm_head(out)

    def train_forward(self, aux, emb, steps: int = 3, noise: float = 0.0):
        """Rows r = (a_r, token_{r+1}); step j feeds the own output of row r - 1. Returns normed outputs per step."""
        T = aux.shape[0]
        cos, sin = train_rope(self.cfg, T, aux.device, emb.dtype)
        layer = self.midlayer
        keys, values, outs, normed = [], [], [], []
        x = self.fc(aux)
        for j in range(steps):
            if j:
                x = torch.cat((x.new_zeros(1, x.shape[1]), outs[-1][:-1]), dim=0)
            q, k, v = layer.self_attn.qkv(layer.attn_input(x, emb), cos, sin)
            keys.append(k)
            values.append(v)
            out = layer.finish(x, train_attention(q, keys, values, j))
            outs.append(out)
            normed.append(self.norm(out))
        return normed
