"""Stop drafting where the draft's own confidence says the chain is unlikely to survive.

A draft model (or EAGLE-style head) knows, for each token it drafts, the probability it gave it:
its confidence. A history-only estimate (`specscope/policy/acceptance.py`) cannot tell which step's chain
will be rejected; the confidence partly can: for the default model's self:24 draft on the shipped
traces (`benchmarks/bench_confidence.py benchmarks/traces/*.jsonl`) it ranks accepted above rejected
first drafts with AUC 0.83-0.88, and a draft is accepted 83-89% of the time at confidence >= 0.99
but 0-12% below 0.4 (the drafter is over-confident in between: 24-50% at 0.9-0.95).
This module turns it into an in-step stopping rule, shared by the simulator's policies and the
engine's `--k adaptive`:

- Calibration (`ConfidenceCalibration`): P(draft accepted | its confidence c, the drafts before it
  were accepted), per proposer, draft depth (1, 2, 3 and deeper: `depths`; a head that drafts from
  its own features is less sure deeper at the same confidence) and confidence bin
  (`CONFIDENCE_EDGES`). Each cell is a Beta count worth `prior_weight` observations of its prior:
  at depth 1 the bin's midpoint (the draft's own probability taken at its word), deeper the
  calibrated rate of the same bin one depth up. Verified steps add what verification revealed:
  drafts 1..a accepted, draft a + 1 rejected when a < k, nothing about drafts after it (their
  contexts left the output).
- Survival: S_j = product over m <= j of P(accepted | c_m), the chance that drafts 1..j all survive.
- Stop (`kept_drafts`): draft j adds S_j expected committed tokens and `marginal[j]` seconds (its
  share of verification and drafting). Keeping it raises the batch's tokens per second iff
  S_j >= rate * marginal[j], rate being the batch's expected tokens per second under the decision;
  S_j only falls with j and the marginal is flat or rising, so the first draft that fails the test
  ends the chain. At least one draft is always kept: the step already paid for it when it decided
  to draft, and the replays charge a step's drafter only where it proposes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE_EDGES = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)


def confidence_bins(confidence: np.ndarray, edges=CONFIDENCE_EDGES) -> np.ndarray:
    """The bin of each confidence between `edges` (NaN counts as certain: the last bin, where searchsorted puts it)."""
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    return np.searchsorted(inner, confidence, side="right")


@dataclass(frozen=True)
class ConfidenceParams:
    """Calibration settings (see the module docstring)."""

    edges: tuple[float, ...] = CONFIDENCE_EDGES  # bin edges over [0, 1]
    prior_weight: float = 4.0  # observations a cell's prior is worth
    depths: int = 3  # draft depths calibrated apart (the last one: that depth and deeper)


class ConfidenceCalibration:
    """P(draft accepted | confidence) per proposer, draft depth and confidence bin, from verified outcomes."""

    def __init__(self, num_proposers: int, params: ConfidenceParams = ConfidenceParams()):
        self.num_proposers, self.params = num_proposers, params
        edges = np.asarray(params.edges, dtype=np.float64)
        self._prior = (edges[:-1] + edges[1:]) / 2.0
        self.reset()

    def reset(self) -> None:
        """Forget all outcomes."""
        shape = (self.num_proposers, self.params.depths, len(self._prior))
        self.accepted, self.seen = np.zeros(shape), np.zeros(shape)
        self._table = None  # `table()` until the next outcome

    def _bin(self, confidence: np.ndarray) -> np.ndarray:
        return confidence_bins(confidence, self.params.edges)

    def _depth(self, columns) -> np.ndarray:
        return np.minimum(columns, self.params.depths - 1)

    def table(self) -> np.ndarray:
        """[P, depths, bins] calibrated acceptance rate of each depth and confidence bin."""
        if self._table is not None:
            return self._table
        w = self.params.prior_weight
        out = np.empty_like(self.seen)
        prior = self._prior  # [bins], the same for every proposer at depth 1
        for d in range(self.params.depths):
            out[:, d] = prior = (self.accepted[:, d] + w * prior) / (self.seen[:, d] + w)
        self._table = out
        return out

    def rate(self, proposer: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """[n, K] P(accepted | confidence) of drafts 1..K with confidences [n, K] (NaN stays NaN)."""
        confidence = np.asarray(confidence, dtype=np.float64)
        depth = self._depth(np.arange(confidence.shape[1]))[None, :]
        rates = self.table()[np.asarray(proposer)[:, None], depth, self._bin(confidence)]
        return np.where(np.isnan(confidence), np.nan, rates)

    def depth_rates(self, proposer: int) -> np.ndarray:
        """[depths] P(draft accepted | the drafts before it were), whatever its confidence: what a draft not yet
        drafted is expected to earn (each depth's pooled outcomes; a depth with none borrows the one above)."""
        rates, prior = np.empty(self.params.depths), 0.5
        for d in range(self.params.depths):
            seen, accepted = self.seen[proposer, d].sum(), self.accepted[proposer, d].sum()
            rates[d] = prior = (accepted + self.params.prior_weight * prior) / (seen + self.params.prior_weight)
        return rates

    def survival(self, proposer: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """[n, K] S_j: the chance that drafts 1..j are all accepted (NaN past a row's drafts)."""
        return np.cumprod(self.rate(proposer, confidence), axis=1)

    def observe(self, proposer: np.ndarray, confidence: np.ndarray, k: np.ndarray, accepted: np.ndarray) -> None:
        """Record verified steps: k drafts with confidences [m, >= max k], the first `accepted` of them accepted."""
        proposer, k, accepted = (np.asarray(x, dtype=np.int64) for x in (proposer, k, accepted))
        if not len(k):
            return
        width = int(k.max(initial=0))
        confidence = np.asarray(confidence, dtype=np.float64)[:, :width]
        j = np.arange(width)[None, :]
        a = np.minimum(accepted, k)[:, None]
        labelled = (j <= a) & (j < k[:, None]) & ~np.isnan(confidence)  # accepted ones and the first rejected
        rows, cols = np.nonzero(labelled)
        at = (proposer[rows], self._depth(cols), self._bin(confidence[rows, cols]))
        np.add.at(self.seen, at, 1.0)
        np.add.at(self.accepted, at, (cols < a[rows, 0]).astype(np.float64))
        self._table = None


def kept_drafts(survival: np.ndarray, k: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """[n] drafts to keep: the leading drafts j (1-based, j <= k) with survival S_j >= floor[:, j - 1],
    at least one where k >= 1. survival, floor: [n, K]."""
    k = np.asarray(k, dtype=np.int64)
    width = survival.shape[1]
    j = np.arange(width)[None, :]
    passes = (survival >= floor) & (j < k[:, None])
    passes[:, 0] |= k > 0
    return np.minimum(np.argmin(np.concatenate([passes, np.zeros((len(k), 1), bool)], axis=1), axis=1), k)
