"""Building blocks shared by the draft heads: their config, one decoder layer, and its two attentions.

A head's decoder layer uses Hugging Face / published-checkpoint parameter names
(`self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`, ...), so a head's `state_dict()` is its
checkpoint. The layer runs in two ways:

- inference (`HeadLayer.forward` with an `attend` from `cached_attention`): ragged chunks of
  several sequences against the head's own `KVCache`, packed exactly as the target's forward does
  (`model.pack_chunks` + `model.attention`);
- training (`train_attention`): whole sequences with the training-time-test pattern, where step j's
  query at position r sees the target-fed keys up to r - j plus the head's own keys of steps 1..j
  along the diagonal — what it sees at inference when drafting the j-th token after position r - j.

The draft vocabulary (`d2t`, EAGLE-3's convention: target id = draft id + d2t[draft id]) lets a head
score only the most frequent target tokens; drafting costs far less than a full-vocabulary head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from specscope.engine.model import ModelConfig, RMSNorm, apply_rope, attention, pack_chunks, rope_cos_sin, rope_inv_freq

HEAD_KINDS = ("eagle", "eagle3", "mtp")


@dataclass
class HeadConfig:
    """Shape of a draft head (names follow the published EAGLE configs where they exist)."""

    kind: str  # one of HEAD_KINDS
    hidden_size: int
    vocab_size: int  # the target's vocabulary
    intermediate_size: int = 0
    num_heads: int = 1
    num_kv_heads: int = 1
    head_dim: int = 0
    num_layers: int = 1  # EAGLE: decoder layers (published heads have 1)
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    draft_vocab_size: int = 0  # 0 = the full target vocabulary
    fc_bias: bool = False  # EAGLE-1 heads have a bias on fc
    attention_bias: bool = False
    aux_layer_ids: tuple[int, ...] = ()  # EAGLE-3: target layers whose INPUT is fused (vLLM's convention)
    num_mtp: int = 0  # MTP: draft positions (heads)
    target: str = ""  # name of the target the head was trained for
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.aux_layer_ids = tuple(int(i) for i in self.aux_layer_ids)
        if not self.draft_vocab_size:
            self.draft_vocab_size = self.vocab_size
        if not self.head_dim:
            self.head_dim = self.hidden_size // max(self.num_heads, 1)

    def model_config(self) -> ModelConfig:
        """A ModelConfig with this head's attention shape (for rotary tables and the KV cache)."""
        return ModelConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_layers=self.num_layers, num_heads=self.num_heads, num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim, rms_norm_eps=self.rms_norm_eps, rope_theta=self.rope_theta,
            rope_scaling=self.rope_scaling,
        )

    @classmethod
    def for_target(cls, kind: str, target_config: ModelConfig, **overrides) -> "HeadConfig":
        """A head shaped like one layer of the target."""
        c = target_config
        base = dict(
            kind=kind, hidden_size=c.hidden_size, vocab_size=c.vocab_size, intermediate_size=c.intermediate_size,
            num_heads=c.num_heads, num_kv_heads=c.num_kv_heads, head_dim=c.head_dim, rms_norm_eps=c.rms_norm_eps,
            rope_theta=c.rope_theta, rope_scaling=c.rope_scaling, target=c.name,
        )
        base.update(overrides)
        return cls(**base)


def aux_layer_outputs(ids, num_layers: int) -> tuple[int, ...]:
    """Target layers whose OUTPUT the engine must return for EAGLE-3 ids (the input of layer i is the
    output of layer i - 1; the embedding, i = 0, is approximated by layer 0's output)."""
    return tuple(min(max(int(i) - 1, 0), num_layers - 1) for i in ids)


def default_aux_ids(num_layers: int) -> tuple[int, int, int]:
    """EAGLE-3's default fused layers: inputs of layers 2, L/2 and L-3."""
    return (min(2, num_layers - 1), num_layers // 2, max(num_layers - 3, 0))


class HeadAttention(nn.Module):
    def __init__(self, cfg: HeadConfig, in_dim: int):
        super().__init__()
        d, h, kvh = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
        self.num_heads, self.num_kv_heads, self.head_dim = h, kvh, d
        self.q_proj = nn.Linear(in_dim, h * d, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(in_dim, kvh * d, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(in_dim, kvh * d, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(h * d, cfg.hidden_size, bias=False)

    def qkv(self, x, cos, sin):
        """[N, in] -> rotated q [N, h, d], k [N, kvh, d], v [N, kvh, d]."""
        N = x.shape[0]
        q = self.q_proj(x).view(N, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(N, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(N, self.num_kv_heads, self.head_dim)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v


class HeadMLP(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class HeadLayer(nn.Module):
    """A Llama decoder layer as EAGLE heads use it.

    EAGLE (`fused_input=False`): `input_layernorm` is absent on layer 0 (the fc output goes straight
    into attention). EAGLE-3 (`fused_input=True`): attention reads cat(input_layernorm(embedding),
    hidden_norm(hidden)), so q/k/v take 2H inputs; the residual is the un-normalised hidden.
    """

    def __init__(self, cfg: HeadConfig, input_norm: bool = True, fused_input: bool = False):
        super().__init__()
        H = cfg.hidden_size
        self.fused_input = fused_input
        self.self_attn = HeadAttention(cfg, 2 * H if fused_input else H)
        self.mlp = HeadMLP(cfg)
        self.input_layernorm = RMSNorm(H, cfg.rms_norm_eps) if (input_norm or fused_input) else None
        self.hidden_norm = RMSNorm(H, cfg.rms_norm_eps) if fused_input else None
        self.post_attention_layernorm = RMSNorm(H, cfg.rms_norm_eps)

    def attn_input(self, x, emb=None):
        if self.fused_input:
            return torch.cat((self.input_layernorm(emb), self.hidden_norm(x)), dim=-1)
        return x if self.input_layernorm is None else self.input_layernorm(x)

    def finish(self, x, attn_out):
        x = x + self.self_attn.o_proj(attn_out)
        return x + self.mlp(self.post_attention_layernorm(x))

    def forward(self, x, emb, cos, sin, attend):
        """x: [N, H] residual stream; `attend(q, k, v)` -> [N, heads * d]."""
        q, k, v = self.self_attn.qkv(self.attn_input(x, emb), cos, sin)
        return self.finish(x, attend(q, k, v))


def cached_attention(cache_k, cache_v, batch):
    """An `attend` for inference: write keys/values into the head's cache and attend (as the target does)."""
    return lambda q, k, v: attention(q, k, v, cache_k, cache_v, batch)


class ChunkRunner:
    """Packs ragged chunks for a head's cached forward: rotary tables + the target's packing."""

    def __init__(self, cfg: HeadConfig, device):
        self.cfg = cfg
        self.inv_freq = rope_inv_freq(cfg.model_config()).to(device)
        self.groups = cfg.num_heads // cfg.num_kv_heads
        self.device = device

    def pack(self, cache, slots, chunks, dtype):
        batch = pack_chunks(cache, slots, chunks, self.groups, self.device, padded=True)
        batch.cos, batch.sin = rope_cos_sin(self.inv_freq, batch.positions, dtype)
        return batch

    def pack_tree_level(self, cache, slots, tokens, prefix, fed: int, depth: int, ancestors, dtype):
        """One level of a draft tree for a cached head forward (`tree_growth.py`): row b's F nodes `tokens[b]` are
        written at cache indices prefix[b] + fed + j (after the `fed` nodes expanded before them), rotated as
        position prefix[b] - 1 + depth (the chain position of a depth-`depth` draft), and each sees the cache
        prefix [0, prefix[b]), its expanded ancestors (`ancestors` [R, F, fed] bool, at prefix[b] + e) and itself.
        Sets `cache.lengths` of the slots to prefix + fed (the caller restores them)."""
        rows, n = tokens.shape
        prefix = torch.as_tensor(prefix, dtype=torch.long)
        cache.lengths[torch.as_tensor(slots)] = prefix + fed
        batch = pack_chunks(cache, slots, list(tokens), self.groups, self.device, padded=True)
        rope = (prefix - 1 + depth).repeat_interleave(n).to(self.device)
        batch.cos, batch.sin = rope_cos_sin(self.inv_freq, rope, dtype)
        start = prefix.to(self.device)[:, None, None]  # [R, 1, 1] cache index of expansion number 0
        mask = torch.arange(batch.kv_len, device=self.device)[None, None, :] < start  # the cache prefix
        mask = mask.expand(rows, n, batch.kv_len).clone()
        if fed:
            at = (start + torch.arange(fed, device=self.device)).expand(rows, n, fed)
            mask.scatter_(2, at, ancestors.to(self.device))
        mask.scatter_(2, start + fed + torch.arange(n, device=self.device)[None, :, None], True)  # itself
        batch.mask = mask[:, None].expand(rows, self.groups, n, batch.kv_len).reshape(rows, 1, self.groups * n,
                                                                                      batch.kv_len)
        return batch


# --------------------------------------------------------------------------------------------
# Training-time attention.


def train_attention(q, keys, values, step: int):
    """Attention of step `step`'s queries for one sequence of T rows (training-time test).

    q: [T, h, d]; keys/values: lists, entry i = step i's [T, kvh, d] (entries 0..step).
    Row r sees step-0 keys at rows <= r - step and step-i keys at row r - step + i (i = 1..step).
    Rows r < step have no step-0 keys (their loss is masked by the caller). Returns [T, h * d].
    """
    T, h, d = q.shape
    kvh = keys[0].shape[1]
    rep = h // kvh
    scale = 1.0 / math.sqrt(d)
    qh = q.transpose(0, 1)  # [h, T, d]
    k0 = keys[0].repeat_interleave(rep, dim=1).transpose(0, 1)  # [h, T, d]
    v0 = values[0].repeat_interleave(rep, dim=1).transpose(0, 1)
    s0 = (qh @ k0.transpose(1, 2)) * scale  # [h, T, T]
    r = torch.arange(T, device=q.device)
    allowed = r[None, :] <= (r[:, None] - step)
    s0 = s0.masked_fill(~allowed, float("-inf"))
    diag_s, diag_v = [], []
    for i in range(1, step + 1):
        shift = step - i  # step-i key of row r sits at row r - shift
        ki = keys[i].repeat_interleave(rep, dim=1).transpose(0, 1)
        vi = values[i].repeat_interleave(rep, dim=1).transpose(0, 1)
        if shift:
            ki = torch.cat((ki.new_zeros(h, shift, d), ki[:, : T - shift]), dim=1)
            vi = torch.cat((vi.new_zeros(h, shift, d), vi[:, : T - shift]), dim=1)
        si = (qh * ki).sum(-1, keepdim=True) * scale  # [h, T, 1]
        si = si.masked_fill((r < shift)[None, :, None], float("-inf"))
        diag_s.append(si)
        diag_v.append(vi)
    scores = torch.cat([s0] + diag_s, dim=-1)
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    probs = torch.nan_to_num(probs)
    out = probs[..., :T] @ v0
    for i, vi in enumerate(diag_v):
        out = out + probs[..., T + i : T + i + 1] * vi
    return out.transpose(0, 1).reshape(T, h * d)


def train_rope(cfg: HeadConfig, T: int, device, dtype):
    inv_freq = rope_inv_freq(cfg.model_config()).to(device)
    return rope_cos_sin(inv_freq, torch.arange(T, device=device), dtype)


# --------------------------------------------------------------------------------------------
# Draft vocabulary and the target's head.


def draft_token_ids(d2t: torch.Tensor | None, vocab_size: int) -> torch.Tensor:
    """Target ids of the draft vocabulary (all ids when there is no reduced vocabulary)."""
    if d2t is None:
        return torch.arange(vocab_size)
    return torch.arange(len(d2t)) + d2t.long()


def d2t_from_ids(ids: torch.Tensor) -> torch.Tensor:
    """EAGLE-3's d2t offsets for sorted target ids."""
    ids = torch.sort(ids.long()).values
    return ids - torch.arange(len(ids))


def target_head_rows(target, ids: torch.Tensor | None) -> torch.Tensor:
    """The target's LM-head rows for `ids` (all rows when None) as a dense float32 [n, H] matrix."""
    head = target.lm_head
    weight = head.dequantize() if hasattr(head, "dequantize") else head.weight.detach().float()
    return weight.float() if ids is None else weight.index_select(0, ids.to(weight.device)).float()


def target_final_norm(target) -> torch.Tensor:
    return target.norm.weight.detach().float().clone()
