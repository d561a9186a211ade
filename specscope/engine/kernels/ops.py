"""The decoder's per-layer ops (`rms_norm`, `silu_mul`, `attention`) on the fused C++ CPU kernels.

Same interface as `model.TorchOps`; one call per op per layer keeps Python overhead small, and each
token's result depends only on its own row (and its sequence's cache), never on the batch.
"""

from __future__ import annotations

import math
import warnings

import torch

from specscope.engine.kernels.build import KernelsUnavailable, cpu_ops

_EMPTY = torch.empty(0)


class CpuKernelOps:
    """Fused float32 CPU kernels for one decoder layer's norm, MLP activation and attention."""

    needs_padding = False  # attention reads each token's own slot and position directly

    def __init__(self):
        self._ops = cpu_ops()

    def rms_norm(self, x, weight, eps):
        return self._ops.rms_norm(x.contiguous(), weight, eps)

    def silu_mul(self, gate_up):
        return self._ops.silu_mul(gate_up.contiguous())

    def attention(self, qkv, cache_k, cache_v, batch, layer):
        q_norm = _EMPTY if layer.q_norm is None else layer.q_norm.weight
        k_norm = _EMPTY if layer.k_norm is None else layer.k_norm.weight
        eps = 0.0 if layer.q_norm is None else layer.q_norm.eps
        args = (
            qkv.contiguous(), cache_k, cache_v, batch.token_slot, batch.positions, batch.cos, batch.sin,
            q_norm, k_norm, eps, layer.num_heads, layer.num_kv_heads, 1.0 / math.sqrt(layer.head_dim),
        )
        if getattr(batch, "visible", None) is not None:  # draft trees: each token lists the keys it sees
            return self._ops.rope_attention_tree(*args, batch.visible)
        return self._ops.rope_attention(*args)


_instance: list = []


def cpu_kernel_ops(required: bool = False) -> CpuKernelOps | None:
    """The shared CpuKernelOps, or None (with one warning) when the kernels cannot be built here."""
    if not _instance:
        try:
            _instance.append(CpuKernelOps())
        except KernelsUnavailable as err:
            if required:
                raise
            warnings.warn(f"specscope: {err}; using plain torch ops", stacklevel=3)
            _instance.append(None)
    if _instance[0] is None and required:
        cpu_ops()  # re-raises the build error
    return _instance[0]
