"""GGUF-quantised weights as torch modules: `GGMLLinear` (the C++ kernel) and `GGMLEmbedding`.

Both hold a weight as its GGUF blocks, uint8 `[rows, row_bytes]`, exactly as stored in the file.
`dequantize_rows` is a torch implementation of the same dequantisation (bit-identical to the
`gguf` package's reference), used for embedding lookups and tests.

Supported block types (ggml type ids): Q4_0 (2), Q4_1 (3), Q8_0 (8). Other types are dequantised
to float32 by the loader.
"""

from __future__ import annotations

import torch
from torch import nn

from specscope.engine.kernels.build import cpu_ops

Q4_0, Q4_1, Q8_0 = 2, 3, 8
BLOCK_BYTES = {Q4_0: 18, Q4_1: 20, Q8_0: 34}  # bytes per block of 32 weights
TYPE_NAMES = {Q4_0: "Q4_0", Q4_1: "Q4_1", Q8_0: "Q8_0"}


def dequantize_rows(blocks: torch.Tensor, qtype: int) -> torch.Tensor:
    """float32 weights [rows, K] from GGUF blocks uint8 [rows, K / 32 * block_bytes]."""
    rows = blocks.shape[0]
    b = blocks.reshape(rows, -1, BLOCK_BYTES[qtype])
    d = b[..., 0:2].contiguous().view(torch.float16).float()  # [rows, blocks, 1]
    if qtype == Q8_0:
        q = b[..., 2:].contiguous().view(torch.int8).float()
        return (q * d).reshape(rows, -1)
    nibbles = b[..., 4:] if qtype == Q4_1 else b[..., 2:]
    q = torch.cat([nibbles & 15, nibbles >> 4], dim=-1).float()  # block element j: low nibbles, then high
    if qtype == Q4_1:
        return (q * d + b[..., 2:4].contiguous().view(torch.float16).float()).reshape(rows, -1)
    return ((q - 8) * d).reshape(rows, -1)


def quantize_rows(w: torch.Tensor, qtype: int) -> torch.Tensor:
    """GGUF blocks uint8 [rows, K / 32 * block_bytes] for float weights [rows, K] (K a multiple of 32).

    Round-to-nearest as llama.cpp's reference quantisers: Q8_0 scale = max|w| / 127; Q4_1 scale =
    (max - min) / 15 with minimum min; Q4_0 scale = (the value of largest magnitude) / -8.
    """
    rows, K = w.shape
    if K % 32:
        raise ValueError(f"row length {K} is not a multiple of 32")
    x = w.detach().float().reshape(rows, K // 32, 32)
    if qtype == Q8_0:
        d = (x.abs().amax(-1, keepdim=True) / 127).half().float()
        q = torch.where(d > 0, x / d, torch.zeros_like(x)).round().clamp(-127, 127).to(torch.int8)
        return torch.cat([d.half().view(torch.uint8), q.view(torch.uint8)], dim=-1).reshape(rows, -1)
    if qtype == Q4_1:
        lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
        d, m = ((hi - lo) / 15).half().float(), lo.half().float()
        q = torch.where(d > 0, (x - m) / d, torch.zeros_like(x)).round().clamp(0, 15).to(torch.uint8)
        head = torch.cat([d.half().view(torch.uint8), m.half().view(torch.uint8)], dim=-1)
    elif qtype == Q4_0:
        idx = x.abs().argmax(-1, keepdim=True)
        d = (x.gather(-1, idx) / -8).half().float()
        q = torch.where(d != 0, x / d + 8, torch.full_like(x, 8.0)).round().clamp(0, 15).to(torch.uint8)
        head = d.half().view(torch.uint8)
    else:
        raise ValueError(f"unsupported ggml type {qtype}")
    nibbles = q[..., :16] | (q[..., 16:] << 4)
    return torch.cat([head, nibbles], dim=-1).reshape(rows, -1)


class GGMLLinear(nn.Module):
    """`y = x @ W^T (+ bias)` with W kept as GGUF blocks; float32 compute on the CPU.

    Row results do not depend on how many rows share a call (see cpu_kernels.cpp), so a token's logits
    are the same whether it is decoded alone or verified in a chunk of k + 1.

    `small_batch_rows`: calls of 2 up to this many rows (at most 4) read each weight block once for
    all rows (the kernel's small-batch path); larger calls use the tiled GEMM. 0 sends every call of
    2+ rows to the tiled GEMM, the path before the small-batch one (benchmarks/bench_step.py compares
    them); the results are bit-identical either way.
    """

    small_batch_rows = 4

    def __init__(self, blocks: torch.Tensor, qtype: int, in_features: int, bias: torch.Tensor | None = None):
        super().__init__()
        if qtype not in BLOCK_BYTES:
            raise ValueError(f"unsupported ggml type {qtype}")
        if in_features % 32 or blocks.shape[1] != in_features // 32 * BLOCK_BYTES[qtype]:
            raise ValueError(f"blocks {tuple(blocks.shape)} do not hold rows of {in_features} {TYPE_NAMES[qtype]} weights")
        self.qtype, self.in_features, self.out_features = qtype, in_features, blocks.shape[0]
        self.register_buffer("blocks", blocks.contiguous())
        self.bias = None if bias is None else nn.Parameter(bias.float(), requires_grad=False)
        self._ops = cpu_ops()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.dtype == torch.float32 and x.is_contiguous():  # the decoder's case: no reshaping
            y = self._ops.ggml_linear(x, self.blocks, self.qtype, self.out_features, self.small_batch_rows)
            return y if self.bias is None else y + self.bias
        x2 = x.reshape(-1, self.in_features).float().contiguous()
        y = self._ops.ggml_linear(x2, self.blocks, self.qtype, self.out_features, self.small_batch_rows)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantize(self) -> torch.Tensor:
        """The float32 weight [out_features, in_features]."""
        return dequantize_rows(self.blocks, self.qtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {TYPE_NAMES[self.qtype]}"


class GGMLEmbedding(nn.Module):
    """Token embedding lookup that dequantises only the looked-up rows."""

    def __init__(self, blocks: torch.Tensor, qtype: int, dim: int, dtype=torch.float32):
        super().__init__()
        self.qtype, self.dim, self.num_embeddings, self.out_dtype = qtype, dim, blocks.shape[0], dtype
        self.register_buffer("blocks", blocks.contiguous())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.blocks.index_select(0, ids.reshape(-1))
        return dequantize_rows(rows, self.qtype).to(self.out_dtype).view(*ids.shape, self.dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.dim}, {TYPE_NAMES[self.qtype]}"
