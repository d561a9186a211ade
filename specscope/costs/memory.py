"""Memory fit: do the weights, the KV cache of batch x context tokens and the activations fit per device?

Per tensor-parallel device, in bytes:
    usable       = memory x memory_utilization (vLLM reserves the rest: CUDA context, graphs, fragmentation)
    weights      = target weights held / tp + the largest draft's / its tp
    activations  = a step of `step_tokens` tokens: per token 2 x hidden + (heads + 2 kv_heads) x head_dim / tp
                   + 2 x intermediate / tp activation elements, plus vocab / tp float32 logits
                   (the largest live set of one layer plus the logits; an estimate, stated as such)
    KV per token = target K and V bytes / tp (KV heads replicated when tp exceeds them) + the draft's
    max_kv_tokens = (usable - weights - activations) / KV per token
A configuration whose weights and activations alone exceed `usable`, or whose batch x context
exceeds `max_kv_tokens`, raises one line saying by how much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from specscope.errors import SpecscopeError

GB = 1e9
STEP_TOKENS = 2048  # activation workspace: tokens of the largest step (vLLM's chunked-prefill budget is of this order)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per device of one deployment (see the module docstring)."""

    what: str  # e.g. "llama-3.1-70b bf16 on 4 x h100-sxm"
    usable: float
    memory: float
    utilization: float
    weights: float
    activations: float
    kv_per_token: float

    @property
    def kv_budget(self) -> float:
        return self.usable - self.weights - self.activations

    @property
    def max_kv_tokens(self) -> int:
        return max(int(self.kv_budget // self.kv_per_token), 0)

    def check(self, batch: int | None = None, context: int | None = None) -> None:
        """Raise one line saying by how much the deployment (with batch x context tokens, if given) does not fit."""
        if self.kv_budget <= self.kv_per_token:
            need = self.weights + self.activations
            raise SpecscopeError(
                f"{self.what} does not fit: weights {self.weights / GB:.1f} GB + activations "
                f"{self.activations / GB:.1f} GB per device exceed the {self.usable / GB:.1f} GB usable "
                f"({self.utilization:.0%} of {self.memory / GB:.0f} GB) by {(need - self.usable) / GB:.1f} GB; "
                "use more devices (--tp) or fewer bits per weight (--dtype fp8 or q4)"
            )
        if batch is not None and context is not None:
            tokens = batch * context
            if tokens > self.max_kv_tokens:
                short = (tokens * self.kv_per_token - self.kv_budget) / GB
                raise SpecscopeError(
                    f"{self.what} does not fit batch {batch} x context {context}: its KV cache of {tokens:,} tokens "
                    f"needs {tokens * self.kv_per_token / GB:.1f} GB per device, {short:.1f} GB more than the "
                    f"{self.kv_budget / GB:.1f} GB left after weights; up to {self.max_kv_tokens:,} tokens fit "
                    f"(e.g. batch {max(self.max_kv_tokens // context, 0)} at context {context})"
                )

    def summary(self) -> str:
        return (f"{self.what}: per device {self.usable / GB:.1f} GB usable = weights {self.weights / GB:.1f} GB + "
                f"activations {self.activations / GB:.2f} GB + KV cache {self.kv_budget / GB:.1f} GB "
                f"= {self.max_kv_tokens:,} KV tokens at {self.kv_per_token / 1e3:.1f} kB each")

    def examples(self, contexts=(2048, 8192, 32768, 131072)) -> list[tuple[int, int]]:
        """(context, largest batch that fits) for a few contexts."""
        return [(c, self.max_kv_tokens // c) for c in contexts if self.max_kv_tokens // c >= 1]

    def as_dict(self) -> dict:
        return {
            "usable_gb_per_device": round(self.usable / GB, 3),
            "weights_gb_per_device": round(self.weights / GB, 3),
            "activations_gb_per_device": round(self.activations / GB, 3),
            "kv_bytes_per_token_per_device": round(self.kv_per_token, 1),
            "max_kv_tokens": self.max_kv_tokens,
            "memory_utilization": self.utilization,
            "activation_step_tokens": STEP_TOKENS,
        }


def activation_bytes(hidden: int, heads: int, kv_heads: int, head_dim: int, intermediate: int, vocab: int,
                     tp: int, act_bytes: int, step_tokens: int = STEP_TOKENS) -> float:
    """Activation workspace of one step per device (module docstring)."""
    per_token = 2 * hidden + (heads + 2 * kv_heads) * head_dim / tp + 2 * intermediate / tp
    return step_tokens * (per_token * act_bytes + 4.0 * math.ceil(vocab / tp))
