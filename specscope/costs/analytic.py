"""The analytic cost form: a roofline step time from a model's shape and a device's spec.

One forward pass of n tokens over a KV cache of `kv` tokens, on each of the tensor-parallel devices:

    weights   = weight_bytes / (bandwidth x weight_bandwidth_efficiency)
    matmuls   = flops_per_token x n / (peak_flops x compute_efficiency)
    kv        = kv_bytes_per_token x (kv + n) / (bandwidth x kv_bandwidth_efficiency)   (read kv, write n)
    attention = attention_flops_per_kv x kv / (peak_flops x compute_efficiency)
    comm      = allreduce_bytes_per_token x n / link_bandwidth
    T_pass    = fixed_s + [weights (+) matmuls] + max(kv, attention) + comm
    a (+) b   = max(a, b) + (1 - overlap) x min(a, b)

The matmuls stream the weights while they compute; `overlap` says how much of the smaller of the two
hides under the larger: 1 is the textbook roofline max(), 0 adds them. The calibrations
(specscope/data/efficiency.toml) chose it from measurements: the published Llama-3.1-8B/H100 fit
is additive (its linear form c_fixed + c_tok N + c_kv KV is reproduced exactly by overlap 0, while
the best max() fit misses it by ~10 % on average and by over 35 % where weights and matmuls take
about as long, a few hundred tokens per step; benchmarks/bench_analytic.py prints both). Attention is one fused kernel that streams the KV cache and computes
on it as it arrives (FlashAttention-style), so it takes the larger of the two: at decode that is
the KV read, which is why the preset's c_kv is one token's KV bytes at the peak bandwidth.

A step of `tokens` tokens runs `passes` dependent passes of tokens / passes tokens each (a target
verifies in 1; a chain drafter proposing k tokens runs k, each reading the draft's weights and KV
again): T(tokens, kv) = passes x T_pass(tokens / passes, kv). Attention is priced as one query per
cached token (decode); verification's k + 1 queries per sequence and a prompt's attention to itself
add compute the form leaves out (small next to the matmuls at the sizes the goals check).

`RooflineCost` holds only numbers (per device, SI units), so the cost-model TOML stores it like any
other form (`form = "roofline"`); building it from a shape, a hardware spec and the calibrated
efficiencies is `specscope/costs/pricing.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from specscope.costs.model import StepCost


@dataclass(frozen=True)
class RooflineCost(StepCost):
    """Seconds of a step on one tensor-parallel device, from bytes, FLOPs and the device's rates."""

    form: ClassVar[str] = "roofline"

    weight_bytes: float  # weights each device reads per pass
    kv_bytes_per_token: float  # K and V bytes per cached token on each device
    flops_per_token: float  # matmul FLOPs per token per device
    attention_flops_per_kv: float  # attention FLOPs per (query, cached token) pair per device
    bandwidth: float  # peak memory bandwidth, bytes/s
    peak_flops: float  # peak dense FLOP/s at the compute precision
    weight_bandwidth_efficiency: float  # share of `bandwidth` reached reading weights
    kv_bandwidth_efficiency: float  # share of `bandwidth` reached reading / writing the KV cache
    compute_efficiency: float  # share of `peak_flops` reached
    overlap: float = 0.0  # 0: memory and compute add; 1: the smaller hides under the larger
    fixed_s: float = 0.0  # seconds per pass regardless of size (layer launches, all-reduce latency)
    allreduce_bytes_per_token: float = 0.0  # bytes each device sends per token (tensor parallelism)
    link_bandwidth: float = 0.0  # interconnect bytes/s per device, each way
    passes: float = 1.0  # dependent forward passes per step (a chain drafter: its k)

    def __post_init__(self):
        for name in ("bandwidth", "peak_flops", "weight_bandwidth_efficiency", "kv_bandwidth_efficiency",
                     "compute_efficiency", "passes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)!r} must be > 0")
        if not 0.0 <= self.overlap <= 1.0:
            raise ValueError(f"overlap = {self.overlap!r} must be between 0 (memory and compute add) and 1 (max)")
        if self.allreduce_bytes_per_token > 0 and not self.link_bandwidth > 0:
            raise ValueError("allreduce_bytes_per_token > 0 needs link_bandwidth > 0 (the interconnect's bytes/s)")

    # -- the parts, each vectorised over numpy arrays ----------------------------------------------
    def weights_s(self):
        """Seconds reading the weights once."""
        return self.weight_bytes / (self.bandwidth * self.weight_bandwidth_efficiency)

    def matmul_s(self, tokens):
        """Seconds of matmul arithmetic for `tokens` tokens."""
        return self.flops_per_token * tokens / (self.peak_flops * self.compute_efficiency)

    def attention_s(self, tokens, kv):
        """Seconds of attention: the larger of its KV traffic and its arithmetic."""
        traffic = self.kv_bytes_per_token * (kv + tokens) / (self.bandwidth * self.kv_bandwidth_efficiency)
        return np.maximum(traffic, self.attention_flops_per_kv * kv / (self.peak_flops * self.compute_efficiency))

    def comm_s(self, tokens):
        """Seconds of all-reduce traffic of one pass (its latency is in `fixed_s`)."""
        if self.allreduce_bytes_per_token == 0:
            return 0.0 * tokens
        return self.allreduce_bytes_per_token * tokens / self.link_bandwidth

    def pass_s(self, tokens, kv):
        """Seconds of one pass of `tokens` tokens."""
        weights, matmul = self.weights_s(), self.matmul_s(tokens)
        linear = np.maximum(weights, matmul) + (1.0 - self.overlap) * np.minimum(weights, matmul)
        return self.fixed_s + linear + self.attention_s(tokens, kv) + self.comm_s(tokens)

    def __call__(self, tokens, kv):
        tokens = np.asarray(tokens, dtype=np.float64)
        kv = np.asarray(kv, dtype=np.float64)
        out = self.passes * self.pass_s(tokens / self.passes, kv)
        return float(out) if out.ndim == 0 else out

    def compute_bound_from(self) -> float:
        """Tokens per pass from which the matmuls take longer than reading the weights (compute-bound)."""
        return self.weights_s() / self.matmul_s(1.0)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: float(v) for f, v in zip(fields(self), asdict(self).values())}


