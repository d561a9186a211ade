"""Per-phase step timers (synchronised on CUDA) and the per-step record the engine keeps.

A step's wall time splits into the time breakdown of docs/design.md: draft (proposers), verify (the target
forward), sample (verification: greedy matching or rejection sampling) and overhead (everything else:
scheduling, cache bookkeeping, host work). `StepClock.lap(phase)` charges the time since the previous
lap to `phase`; whatever is not charged to a named phase is overhead. On CUDA the clock synchronises
the device before reading the time, so queued kernels are charged to the phase that launched them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

PHASES = ("draft", "verify", "sample", "overhead")


def _no_sync() -> None:
    pass


def device_sync(device) -> callable:
    """A function that waits for queued work on `device` (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return _no_sync


class StepClock:
    """Times the phases of one step at a time."""

    def __init__(self, device="cpu"):
        self.sync = device_sync(device)
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._start = self._mark = 0.0

    def start(self) -> None:
        self.sync()
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._start = self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        """Charge the time since the previous lap (or start) to `phase`."""
        self.sync()
        now = time.perf_counter()
        self.seconds[phase] += now - self._mark
        self._mark = now

    def stop(self) -> dict[str, float]:
        """End the step; the remainder not charged to draft/verify/sample is overhead. Returns seconds per phase."""
        self.sync()
        total = time.perf_counter() - self._start
        named = self.seconds["draft"] + self.seconds["verify"] + self.seconds["sample"]
        self.seconds["overhead"] = max(total - named, 0.0)
        return dict(self.seconds)


@dataclass
class StepRecord:
    """One engine step: its phase times and what it processed."""

    draft: float
    verify: float
    sample: float
    overhead: float
    num_seqs: int  # sequences in the verification forward
    num_prefill: int  # of which new sequences (their prompt is in the forward)
    num_batched_tokens: int  # tokens in the target forward (prompts + last tokens + drafts)
    num_kv_tokens: int  # tokens held in the target cache by those sequences before the step
    proposed: int  # draft tokens proposed, all sequences
    accepted: int  # draft tokens committed, all sequences
    committed: int  # tokens committed, all sequences (accepted + bonus, clipped at stops)
    decision: float = 0.0  # of draft + overhead: the drafter's policy deciding and observing (`Drafter.decision_seconds`)

    @property
    def seconds(self) -> float:
        return self.draft + self.verify + self.sample + self.overhead


def time_breakdown(steps: list[StepRecord]) -> dict[str, float]:
    """Total seconds per phase over `steps`."""
    return {phase: sum(getattr(s, phase) for s in steps) for phase in PHASES}
