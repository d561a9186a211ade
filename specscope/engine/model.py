"""A compact Llama-family decoder (Llama, Qwen2, Qwen3) that runs ragged chunks of tokens against a KV cache.

The one entry point the engine uses is `DecoderModel.forward_chunks`: chunk i is a run of tokens of
the sequence in cache slot `slots[i]`, placed at positions `cache.lengths[slot] ... + len(chunk) - 1`.
A prefill of a new prompt and the 1 + k tokens of a verification step can share one call. All tokens
of all chunks go through the linear layers as one packed `[N, hidden]` matrix; attention runs on a
padded `[chunks, heads, max_chunk_len, head_dim]` view with one boolean mask shared by all layers.

Keys/values of the chunk tokens are written into the cache, but `cache.lengths` is NOT advanced:
after verification the caller commits the accepted prefix with `cache.set_length(slot, new_len)`.
Rejected positions are simply overwritten later (see `kv_cache.py`).

`num_layers=L` runs only the first L layers, then the final norm and the head: a layer-truncated
self-draft, using its own cache made by `new_cache(num_layers=L)`.

Linear layers are ordinary modules (`torch.nn.Linear` in the fp32/bf16 path); the loader swaps in
`kernels.ggml.GGMLLinear` / `GGMLEmbedding` (GGUF's own quantised blocks, CPU) with the same call
signature, so this file never branches on a weight format.

Run the real-model checks with `pytest tests/engine/test_model.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from specscope.engine.kv_cache import KVCache
from specscope.errors import SpecscopeError

ARCHITECTURES = ("llama", "qwen2", "qwen3")


@dataclass
class ModelConfig:
    """Shape and numerics of a Llama-family decoder (names follow Hugging Face's config.json)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # {"rope_type": "linear"|"llama3", "factor": ..., ...} or None
    max_position: int = 2048  # context length the checkpoint was trained for
    tie_word_embeddings: bool = False
    arch: str = "llama"  # one of ARCHITECTURES
    attention_bias: bool = False  # Qwen2: biases on q/k/v
    qk_norm: bool = False  # Qwen3: RMSNorm over head_dim on q and k before rotary
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    name: str = ""

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise SpecscopeError(f"unsupported architecture '{self.arch}'; supported: {', '.join(ARCHITECTURES)}")
        if self.num_heads % self.num_kv_heads:
            raise SpecscopeError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        self.eos_token_ids = tuple(int(t) for t in self.eos_token_ids)


@dataclass
class ChunkOutput:
    """What `forward_chunks` returns, one entry per input chunk."""

    logits: list[torch.Tensor]  # per chunk [len_i, vocab] float32 (or its last num_logits[i] rows)
    hidden: list[torch.Tensor]  # per chunk [len_i, hidden]: last hidden state after the final norm
    layer_hidden: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # layer -> per chunk [len_i, hidden]


# ---------------------------------------------------------------------------------------------
# Host-side packing of ragged chunks: index tensors built once per forward and shared by all layers.


@dataclass
class ChunkBatch:
    """Index tensors describing one packed call (all on the model's device unless noted)."""

    tokens: torch.Tensor  # [N] token ids, chunks concatenated
    positions: torch.Tensor  # [N] absolute position of each token in its sequence
    token_slot: torch.Tensor  # [N] cache slot of each token
    lens: list[int]  # host: tokens per chunk
    num_chunks: int
    q_len: int  # longest chunk (queries are padded to this)
    kv_len: int  # longest sequence after this call (keys are read up to this)
    slot_range: tuple[int, int] | None  # host: (first, end) when the slots are consecutive and increasing
    slot_index: torch.Tensor  # [B] slots, for gathering keys when slot_range is None
    pad_rows: torch.Tensor | None  # [N] row of each token in the padded [B * q_len] layout; None if no padding
    mask: torch.Tensor | None  # [B, 1, groups * q_len, kv_len] bool, True = may attend; None = attend to all
    cos: torch.Tensor | None = None  # [N, head_dim // 2] rotary tables, set by the model
    sin: torch.Tensor | None = None
    # Draft trees (see tree.py); None for chunks that are all plain causal runs.
    rope_positions: torch.Tensor | None = None  # [N] rotary position when it differs from the cache index
    visible: torch.Tensor | None = None  # [N, W] host int64: keys each token sees (the CPU kernels read it)


def pack_chunks(cache: KVCache, slots: Sequence[int], chunks, groups: int, device, padded: bool = True,
                trees=None) -> ChunkBatch:
    """Lay out ragged chunks as packed token rows plus (if `padded`) the padded-attention indices and mask.

    `trees[i]`: parents of chunk i's tokens when it holds a draft tree (`tree.chunk_layout`), else None.
    """
    slots = [int(s) for s in slots]
    if len(slots) != len(chunks) or not slots:
        raise ValueError(f"need one slot per chunk and at least one chunk (got {len(slots)} slots, {len(chunks)} chunks)")
    if len(set(slots)) != len(slots):
        raise ValueError(f"a slot may appear once per call (got {slots})")
    lens = [len(c) for c in chunks]
    if min(lens) < 1:
        raise ValueError("empty chunk")
    starts = cache.lengths[slots].tolist()  # host tensor: no device sync
    ends = [s + n for s, n in zip(starts, lens)]
    for slot, end in zip(slots, ends):
        if end > cache.max_len:
            raise SpecscopeError(
                f"sequence in cache slot {slot} would reach {end} tokens but the KV cache holds {cache.max_len}; "
                "use a shorter prompt/output or a larger max_len"
            )
    B, q_len, kv_len = len(chunks), max(lens), max(ends)

    tokens = torch.cat([torch.as_tensor(c, dtype=torch.long).reshape(-1).to(device) for c in chunks])
    lens_t, starts_t = torch.tensor(lens), torch.tensor(starts)
    chunk_of = torch.repeat_interleave(torch.arange(B), lens_t)  # [N]
    offset = torch.arange(len(chunk_of)) - torch.repeat_interleave(torch.cumsum(lens_t, 0) - lens_t, lens_t)
    positions = starts_t[chunk_of] + offset
    slots_t = torch.tensor(slots)
    consecutive = slots == list(range(slots[0], slots[0] + B))
    layout = None
    if trees is not None and any(t is not None for t in trees):
        from specscope.engine.tree import chunk_layout

        layout = chunk_layout(starts, lens, trees)

    pad_rows = mask = None
    if padded:
        if min(lens) < q_len:
            pad_rows = chunk_of * q_len + offset
        # Query j of chunk b sits at position starts[b] + j (padding rows reuse the chunk's last position).
        j = torch.arange(q_len)
        q_pos = starts_t[:, None] + torch.minimum(j[None, :], lens_t[:, None] - 1)  # [B, q_len]
        mask = torch.arange(kv_len)[None, None, :] <= q_pos[:, :, None]  # [B, q_len, kv_len]
        for b, anc in enumerate(layout.masks if layout is not None else ()):
            if anc is not None:  # a tree token sees the prefix, its ancestors and itself
                mask[b, : lens[b], starts[b] : ends[b]] = torch.from_numpy(anc)
        if bool(mask.all()):
            mask = None  # every query sees every key: let attention skip the mask
        else:
            mask = mask[:, None].expand(B, groups, q_len, kv_len).reshape(B, 1, groups * q_len, kv_len).to(device)

    return ChunkBatch(
        tokens=tokens,
        positions=positions.to(device),
        token_slot=slots_t[chunk_of].to(device),
        lens=lens,
        num_chunks=B,
        q_len=q_len,
        kv_len=kv_len,
        slot_range=(slots[0], slots[0] + B) if consecutive else None,
        slot_index=slots_t.to(device),
        pad_rows=None if pad_rows is None else pad_rows.to(device),
        mask=mask,
        rope_positions=None if layout is None else torch.from_numpy(layout.rope_positions).to(device),
        visible=None if layout is None else torch.from_numpy(layout.visible),
    )


# ---------------------------------------------------------------------------------------------
# Building blocks.


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in float32, as Hugging Face's LlamaRMSNorm."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """Rotary inverse frequencies [head_dim // 2], with linear or llama3-style scaling applied."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = config.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        # Llama 3.1's frequency-dependent scaling: long wavelengths are divided by `factor`, short ones
        # kept, the band in between interpolated (Meta's reference implementation, llama3 model card).
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
        return torch.where(medium, smoothed, scaled)
    raise SpecscopeError(f"unsupported rope scaling '{kind}'; supported: default, linear, llama3")


def rope_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [N, head_dim // 2] for the given positions (computed in float32)."""
    freqs = positions.float()[:, None] * inv_freq[None, :]
    return freqs.cos().to(dtype), freqs.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate [N, heads, head_dim] by position (cos/sin [N, head_dim // 2]), halves layout (HF's rotate_half)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos[:, None], sin[:, None]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def attention(q, k, v, cache_k, cache_v, batch: ChunkBatch) -> torch.Tensor:
    """Write this call's keys/values into the cache, then attend each query to its sequence.

    q: [N, heads, d]; k, v: [N, kv_heads, d]; cache_k/v: [slots, kv_heads, max_len, d] (one layer).
    The query heads that share a kv head are stacked along the query axis, so grouped-query attention
    needs no copy of the keys. Returns [N, heads * d].
    """
    N, heads, d = q.shape
    kv_heads = k.shape[1]
    groups = heads // kv_heads
    B, Q = batch.num_chunks, batch.q_len
    cache_k[batch.token_slot, :, batch.positions] = k
    cache_v[batch.token_slot, :, batch.positions] = v
    if batch.slot_range is not None:
        keys = cache_k[batch.slot_range[0] : batch.slot_range[1], :, : batch.kv_len]
        values = cache_v[batch.slot_range[0] : batch.slot_range[1], :, : batch.kv_len]
    else:
        keys = cache_k[batch.slot_index, :, : batch.kv_len]
        values = cache_v[batch.slot_index, :, : batch.kv_len]
    if batch.pad_rows is not None:
        q = q.new_zeros(B * Q, heads, d).index_copy_(0, batch.pad_rows, q)
    q = q.view(B, Q, kv_heads, groups, d).permute(0, 2, 3, 1, 4).reshape(B, kv_heads, groups * Q, d)
    out = F.scaled_dot_product_attention(q, keys, values, attn_mask=batch.mask)  # [B, kv_heads, groups*Q, d]
    out = out.view(B, kv_heads, groups, Q, d).permute(0, 3, 1, 2, 4).reshape(B * Q, heads * d)
    return out if batch.pad_rows is None else out.index_select(0, batch.pad_rows)


class TorchOps:
    """The per-layer ops in plain torch: the reference, and the path for CUDA and other dtypes.

    `kernels.ops.CpuKernelOps` implements the same three methods with fused C++ kernels.
    """

    needs_padding = True  # attention() reads batch.pad_rows / batch.mask

    def rms_norm(self, x, weight, eps):
        return rms_norm(x, weight, eps)

    def silu_mul(self, gate_up):
        gate, up = gate_up.chunk(2, dim=-1)
        return F.silu(gate) * up

    def attention(self, qkv, cache_k, cache_v, batch: ChunkBatch, layer: "Block") -> torch.Tensor:
        """[N, (heads + 2 kv_heads) * d] fused projections -> [N, heads * d] attention output."""
        N, h, kvh, d = qkv.shape[0], layer.num_heads, layer.num_kv_heads, layer.head_dim
        q, k, v = qkv.split([h * d, kvh * d, kvh * d], dim=-1)
        q, k, v = q.view(N, h, d), k.view(N, kvh, d), v.view(N, kvh, d)
        if layer.q_norm is not None:
            q, k = layer.q_norm(q), layer.k_norm(k)
        q, k = apply_rope(q, batch.cos, batch.sin), apply_rope(k, batch.cos, batch.sin)
        return attention(q, k, v, cache_k, cache_v, batch)


TORCH_OPS = TorchOps()


class Block(nn.Module):
    """One decoder layer: pre-norm grouped-query attention and a SwiGLU MLP, each with a residual."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.num_heads, self.num_kv_heads, self.head_dim = c.num_heads, c.num_kv_heads, c.head_dim
        self.attn_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        # q, k and v projections fused into one matrix (rows: q heads, then k heads, then v heads).
        self.qkv = nn.Linear(c.hidden_size, (c.num_heads + 2 * c.num_kv_heads) * c.head_dim, bias=c.attention_bias)
        self.o = nn.Linear(c.num_heads * c.head_dim, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(c.head_dim, c.rms_norm_eps) if c.qk_norm else None
        self.k_norm = RMSNorm(c.head_dim, c.rms_norm_eps) if c.qk_norm else None
        self.mlp_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        # gate and up projections fused (rows: gate, then up).
        self.gate_up = nn.Linear(c.hidden_size, 2 * c.intermediate_size, bias=False)
        self.down = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x, ops, cache_k, cache_v, batch: ChunkBatch) -> torch.Tensor:
        h = ops.rms_norm(x, self.attn_norm.weight, self.attn_norm.eps)
        x = x + self.o(ops.attention(self.qkv(h), cache_k, cache_v, batch, self))
        h = ops.rms_norm(x, self.mlp_norm.weight, self.mlp_norm.eps)
        return x + self.down(ops.silu_mul(self.gate_up(h)))


class DecoderModel(nn.Module):
    """Llama-family decoder over ragged chunks with a slot KV cache (see the module docstring)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight
        self.register_buffer("inv_freq", rope_inv_freq(config), persistent=False)
        self.weight_format = "dense"  # the loader says e.g. "GGUF Q4_1/Q8_0 blocks + float32"
        # "auto": fused CPU kernels when on the CPU in float32 and they build, else torch ops; or "torch" / "cpu".
        self.kernels = "auto"

    def ops(self):
        """The per-layer op implementation this forward will use (see `kernels`)."""
        if self.kernels == "torch" or self.device.type != "cpu" or self.dtype != torch.float32:
            if self.kernels == "cpu":
                raise ValueError("the CPU kernels need a float32 model on the CPU")
            return TORCH_OPS
        from specscope.engine.kernels.ops import cpu_kernel_ops

        return cpu_kernel_ops(required=self.kernels == "cpu") or TORCH_OPS

    @property
    def device(self) -> torch.device:
        return self.norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype (activations, KV cache); quantised linears keep their own storage format."""
        return self.norm.weight.dtype

    def weight_nbytes(self) -> int:
        """Bytes of all weights held (shared tensors counted once)."""
        seen, total = set(), 0
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.nbytes
        return total

    def new_cache(self, num_slots: int, max_len: int, num_layers: int | None = None) -> KVCache:
        """A zeroed KV cache for `num_slots` sequences of up to `max_len` tokens (first `num_layers` layers)."""
        c = self.config
        return KVCache(num_layers or c.num_layers, num_slots, max_len, c.num_kv_heads, c.head_dim, self.device, self.dtype)

    @torch.inference_mode()
    def forward_chunks(
        self,
        cache: KVCache,
        slots: Sequence[int],
        chunks: Sequence[torch.Tensor | list[int]],
        num_layers: int | None = None,
        hidden_layers: Sequence[int] = (),
        num_logits: Sequence[int | None] | None = None,
        trees: Sequence | None = None,
    ) -> ChunkOutput:
        """Run chunk i (tokens of the sequence in `slots[i]`) at positions `cache.lengths[slot] ...`.

        Writes the chunks' keys/values into `cache` but does not advance `cache.lengths`.
        `num_layers`: run only the first L layers (the cache must have been made with the same L).
        `hidden_layers`: also return the output of these layers (before the final norm).
        `num_logits[i]`: compute logits only for the last n tokens of chunk i (None = all), e.g. 1 for a
        prefill whose earlier positions need no prediction; the head is a large share of the work.
        `trees[i]`: parents of chunk i's tokens when it is a draft tree (see `tree.py`): each token is
        written at its chunk offset, rotated by its depth and sees the prefix plus its ancestors only.
        """
        L = num_layers or self.config.num_layers
        if not 1 <= L <= self.config.num_layers:
            raise ValueError(f"num_layers {L} out of range [1, {self.config.num_layers}]")
        if cache.num_layers != L:
            raise ValueError(f"cache has {cache.num_layers} layers but the forward runs {L}")
        ops = self.ops()
        groups = self.config.num_heads // self.config.num_kv_heads
        batch = pack_chunks(cache, slots, chunks, groups, self.device, padded=ops.needs_padding, trees=trees)
        x = self.embed(batch.tokens)
        rope_at = batch.positions if batch.rope_positions is None else batch.rope_positions
        batch.cos, batch.sin = rope_cos_sin(self.inv_freq, rope_at, x.dtype)
        wanted, layer_out = set(hidden_layers), {}
        for i in range(L):
            x = self.layers[i](x, ops, *cache.layer(i), batch)
            if i in wanted:
                layer_out[i] = list(x.split(batch.lens))
        hidden = ops.rms_norm(x, self.norm.weight, self.norm.eps)
        rows = logit_rows(batch.lens, num_logits, hidden.device)
        logits = self.lm_head(hidden if rows is None else hidden.index_select(0, rows)).float()
        counts = batch.lens if num_logits is None else [n if k is None else min(k, n) for n, k in zip(batch.lens, num_logits)]
        return ChunkOutput(list(logits.split(counts)), list(hidden.split(batch.lens)), layer_out)


def logit_rows(lens: list[int], num_logits, device) -> torch.Tensor | None:
    """Packed row indices of the tokens that need logits (None = every row)."""
    if num_logits is None or all(k is None or k >= n for n, k in zip(lens, num_logits)):
        return None
    rows, start = [], 0
    for n, k in zip(lens, num_logits):
        keep = n if k is None else min(k, n)
        rows.extend(range(start + n - keep, start + n))
        start += n
    return torch.tensor(rows, device=device)


# ---------------------------------------------------------------------------------------------
# Tiny random models for tests.


def tiny_config(**overrides) -> ModelConfig:
    """A tiny random-weight config for tests: vocab 512, 3 layers, 4 heads / 2 kv heads (GQA)."""
    base = ModelConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_layers=3,
        num_heads=4,
        num_kv_heads=2,
        head_dim=16,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        max_position=1024,
        tie_word_embeddings=False,
        arch="llama",
        bos_token_id=1,
        eos_token_ids=(2,),
        name="tiny-random",
    )
    arch = overrides.get("arch", "llama")
    arch_defaults = {"qwen2": {"attention_bias": True}, "qwen3": {"qk_norm": True}}.get(arch, {})
    return replace(base, **{**arch_defaults, **overrides})


def random_model(config: ModelConfig, seed: int = 0, device="cpu", dtype=torch.float32) -> DecoderModel:
    """A DecoderModel with seeded random weights (peaked enough that greedy choices are stable)."""
    gen = torch.Generator().manual_seed(seed)
    model = DecoderModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name == "embed.weight":
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    return model.to(device=device, dtype=dtype).eval()
