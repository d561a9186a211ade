"""What one replay (one policy, one batch size, one mode) measures, and the metrics derived from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplayResult:
    """Totals of one replay. Times in seconds, token counts per sequence (paper: per copy).

    paper mode: `time_s` and the time parts are summed over request-batches of each batch's mean
    copy latency; `throughput` is the mean over request-batches of B * G / mean copy latency.
    serve mode: `time_s` is the makespan and `throughput` is generated tokens / makespan.
    """

    generated_tokens: float  # output tokens produced (paper: B * G per request-batch)
    throughput: float  # tokens / s
    time_s: float
    target_s: float  # target forward passes: prefill + verification
    draft_s: float  # proposers
    overhead_s: float  # per-step overhead and proposer switching
    mean_latency_s: float  # paper: mean copy latency; serve: mean request completion time
    steps: float  # decode steps taken by the sequences
    committed: float  # tokens those steps committed
    proposed: float  # draft tokens verified
    rejected: float  # of those, rejected

    @property
    def mean_acc_len(self) -> float:
        """Committed tokens per decode step (>= 1)."""
        return self.committed / self.steps if self.steps else float("nan")

    @property
    def acceptance_rate(self) -> float:
        """Accepted draft tokens / proposed draft tokens (NaN when nothing was proposed)."""
        return 1.0 - self.rejected / self.proposed if self.proposed else float("nan")

    @property
    def wasted_verify_share(self) -> float:
        """Share of verified draft tokens that were rejected (0 when nothing was proposed)."""
        return self.rejected / self.proposed if self.proposed else 0.0

    def share(self, part_s: float) -> float:
        return part_s / self.time_s if self.time_s else float("nan")
