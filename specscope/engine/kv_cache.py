"""Per-sequence KV cache in fixed slots (a static buffer, as in gpt-fast's `KVCache`).

Each slot holds one sequence. `DecoderModel.forward_chunks` writes the keys/values of new tokens at
positions `lengths[slot] ...` but never advances `lengths`; the caller commits the accepted prefix
with `set_length`. Rejecting draft tokens therefore costs nothing: their entries stay in the buffer
and are overwritten by the next forward. Rewinding is the same call with a smaller length.

Layout: `k` and `v` are `[num_layers, num_slots, num_kv_heads, max_len, head_dim]` so that one
slot's keys for one head are contiguous along the position axis (what attention reads).
`lengths` is host-side bookkeeping and always lives on the CPU, whatever the cache's device, so
reading it never synchronises with an accelerator.
"""

from __future__ import annotations

import torch

from specscope.errors import SpecscopeError

# Leave this share of the free memory to everything else (weights, activations, the OS).
_MEMORY_HEADROOM = 0.8


class KVCache:
    """Per-sequence KV cache in fixed slots. Rejecting drafts costs nothing: the length simply does not advance."""

    def __init__(
        self,
        num_layers: int,
        num_slots: int,
        max_len: int,
        num_kv_heads: int,
        head_dim: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        if num_slots < 1 or max_len < 1 or num_layers < 1:
            raise ValueError(f"KVCache needs num_layers, num_slots, max_len >= 1 (got {num_layers}, {num_slots}, {max_len})")
        self.num_layers, self.num_slots, self.max_len = num_layers, num_slots, max_len
        shape = (num_layers, num_slots, num_kv_heads, max_len, head_dim)
        check_fits(2 * torch.Size(shape).numel() * torch.empty(0, dtype=dtype).element_size(), device, num_slots, max_len)
        # Zero-filled: attention never reads past a slot's valid length, but padding rows must stay finite.
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.lengths = torch.zeros(num_slots, dtype=torch.long)  # [num_slots] committed tokens, on CPU
        self._layers = list(zip(self.k.unbind(0), self.v.unbind(0)))  # per-layer views, made once

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of layer i: two [num_slots, num_kv_heads, max_len, head_dim] views."""
        return self._layers[i]

    @property
    def device(self) -> torch.device:
        return self.k.device

    def reset(self, slot: int) -> None:
        """Free a slot (length 0) for a new sequence."""
        self.set_length(slot, 0)

    def set_length(self, slot: int, length: int) -> None:
        """Commit or rewind: keep the first `length` positions of `slot`."""
        if not 0 <= slot < self.num_slots:
            raise IndexError(f"slot {slot} out of range [0, {self.num_slots})")
        if not 0 <= length <= self.max_len:
            raise ValueError(f"length {length} out of range [0, {self.max_len}] for slot {slot}")
        self.lengths[slot] = length

    def move(self, slot: int, src, dst) -> None:
        """Copy the entries at positions `src` of `slot` to positions `dst` (all layers), e.g. to put a
        draft tree's accepted path at consecutive positions. Sources are read before any is written."""
        src, dst = torch.as_tensor(src, dtype=torch.long), torch.as_tensor(dst, dtype=torch.long)
        if src.numel():
            for buf in (self.k, self.v):
                view = buf[:, slot]  # [layers, kv_heads, max_len, head_dim]
                view[:, :, dst.to(buf.device)] = view[:, :, src.to(buf.device)]

    def length(self, slot: int) -> int:
        """Committed tokens held by `slot`."""
        return int(self.lengths[slot])

    def nbytes(self) -> int:
        """Bytes held by the key and value buffers."""
        return self.k.nbytes + self.v.nbytes

    def __repr__(self) -> str:
        return (
            f"KVCache(layers={self.num_layers}, slots={self.num_slots}, max_len={self.max_len}, "
            f"dtype={self.k.dtype}, device={self.device}, {self.nbytes() / 2**20:.1f} MiB)"
        )


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory on `device` in bytes (CUDA: free device memory; CPU: MemAvailable), None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def check_fits(nbytes: int, device: torch.device | str, num_slots: int, max_len: int) -> None:
    """Raise a one-line SpecscopeError when a cache of `nbytes` cannot fit in the free memory of `device`."""
    free = available_bytes(device)
    if free is not None and nbytes > _MEMORY_HEADROOM * free:
        raise SpecscopeError(
            f"the KV cache for batch size {num_slots} x {max_len} tokens needs {nbytes / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB of {torch.device(device).type} memory is free; "
            "lower --batch-size or --max-new-tokens"
        )
