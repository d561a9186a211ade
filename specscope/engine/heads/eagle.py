"""EAGLE (EAGLE-1) draft head: predicts the target's next feature from its current feature and the next token.

    x_p   = fc(cat(embed(token_{p+1}), f_p))          f_p: target's last hidden state (after its final norm)
    f'_p  = decoder layer(s)(x_p)                      (layer 0 has no input norm, as published)
    token = argmax(target LM head · f'_p)              the target's own head, no extra norm

Drafting feeds f'_p back in as the next feature, autoregressively. Parameter names are the published
EAGLE checkpoint's (`fc.weight`, `layers.0.self_attn.q_proj.weight`, ...); an optional `d2t` buffer
(EAGLE-3's convention) restricts the target head to a reduced draft vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from specscope.engine.heads.common import HeadConfig, HeadLayer, train_attention, train_rope


class EagleHead(nn.Module):
    kind = "eagle"

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden_size
        self.fc = nn.Linear(2 * H, H, bias=cfg.fc_bias)
        self.layers = nn.ModuleList(HeadLayer(cfg, input_norm=i > 0) for i in range(cfg.num_layers))
        self.d2t = None  # [draft_vocab] int64 offsets, set by the loader when the vocabulary is reduced

    @property
    def num_cache_layers(self) -> int:
        return self.cfg.num_layers

    def feature_dim(self, target_hidden: int) -> int:
        return target_hidden

    # feats: [N, H] (target's or own); emb: [N, H]; attends: one per layer
    def step(self, feats, emb, cos, sin, attends, fed: bool):
        """One forward of the head; returns (feature to feed back [N, H], logits input [N, H])."""
        x = self.fc(torch.cat((emb, feats.to(emb.dtype)), dim=-1))
        for layer, attend in zip(self.layers, attends):
            x = layer(x, None, cos, sin, attend)
        return x, x

    def logits(self, out, lm_rows):
        return out @ lm_rows.t()

    def train_forward(self, feats, emb, steps: int = 1, noise: float = 0.0):
        """Training forward over one sequence: rows r = (f_r, token_{r+1}); returns per step [T, H] outputs."""
        T = feats.shape[0]
        cos, sin = train_rope(self.cfg, T, feats.device, emb.dtype)
        if noise:
            feats = feats + (torch.rand_like(feats) * 2 - 1) * noise
        outs, per_layer_kv = [], [([], []) for _ in self.layers]
        cur = feats
        for j in range(steps):
            if j:
                cur = torch.cat((cur.new_zeros(1, cur.shape[1]), outs[-1][:-1]), dim=0)  # own output of row r-1
            x = self.fc(torch.cat((emb, cur), dim=-1))
            for layer, (ks, vs) in zip(self.layers, per_layer_kv):
                q, k, v = layer.self_attn.qkv(layer.attn_input(x), cos, sin)
                ks.append(k)
                vs.append(v)
                x = layer.finish(x, train_attention(q, ks, vs, j))
            outs.append(x)
        return outs
