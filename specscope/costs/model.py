"""Cost-model forms: how long a target step, a draft step and the per-step overhead take, in seconds.

- target step   T(N, KV, R): N = tokens in the step (all sequences batched), KV = tokens held in the KV
                cache by the running sequences at the start of the step, R = rows, the sequences in the
                step (optional: forms that do not need it ignore it). Any `StepCost` form; the presets
                use `LinearCost`, T = c_fixed + c_tok * N + c_kv * KV (R ignored); `fit-cost` fits the
                measured surface of `specscope/costs/surface.py` from a profile that records batch sizes.
- draft step, one form per proposer:
    a `StepCost`       of (tokens, KV, rows), where tokens = k + 1 per drafting sequence (the last
                       committed token plus the k drafts: the "scheduled tokens" of the published
                       fit), KV is the batch's KV and rows the drafting sequences (a chain of k
                       draft passes: `ChainCost` in `specscope/costs/surface.py`);
    `VerifyFraction`   fraction * T(N, KV) of the same step (cheap host-side proposers such as n-gram).
- overhead      a constant per step (scheduling, bookkeeping, sampling), plus `switching` per
                sequence whose proposer differs from the one it drafted with last, plus in serve mode
                under a policy that decides as the run goes (`Policy.online`: adaptive) its own host
                time per step (paper mode keeps the published simulator's pricing),
                `decision` + `decision_per_sequence` x the decoding sequences, + `decision_drafting` in a
                step where some sequence drafts (planning its chains) (`decision_seconds`).
- memory        optional: `max_kv_tokens`, the KV tokens the device memory holds next to the weights
                (analytic models know it); the simulator caps the batch so the longest request fits.

Consumers (the simulator, the adaptive decision) use only the `StepCost` interface, so a new form
(a measured surface, an analytic roofline) is one class plus one entry in `specscope/costs/forms.py`.
The file format (TOML) is `specscope/formats/cost_model.py`; presets `specscope/costs/presets.py`.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np

from specscope.errors import SpecscopeError


class StepCost:
    """Seconds of one forward pass as a function of (tokens in the step, KV tokens, rows); numpy-vectorised.

    `rows` (the sequences in the step) is optional everywhere: None where the caller does not know it;
    forms that need it take None as one sequence. Subclasses implement `__call__` and `as_dict`; the
    rest has exact defaults a form may override with closed forms. `scales_verify = False`: priced by
    its own tokens (draft forms share the flag with `VerifyFraction`, which is priced by the verify
    step instead).
    """

    form: ClassVar[str] = ""
    scales_verify: ClassVar[bool] = False

    def __call__(self, tokens, kv, rows=None):
        raise NotImplementedError

    def marginal(self, tokens, kv, extra, rows=None):
        """Seconds `extra` more tokens (of the same `rows` sequences) add to a step of `tokens` tokens."""
        return self(tokens + extra, kv, rows) - self(tokens, kv, rows)

    def slope(self, tokens, kv, rows=None) -> float:
        """Seconds per token around a step of `tokens` tokens (what one more token adds)."""
        return self.marginal(tokens, kv, 1, rows)

    def fixed(self, kv, rows=None) -> float:
        """Seconds of the step's part that does not grow with its tokens: T(0, KV)."""
        return self(0, kv, rows)

    @property
    def catches_up(self) -> bool:
        """Whether `catch_up` can be more than 0 (the simulator skips the bookkeeping where it cannot)."""
        return False

    def catch_up(self, tokens):
        """Seconds a drafter spends taking in `tokens` context tokens it has not seen, beyond a step's own (a new
        sequence's prompt, at its first drafting step: a draft model or head runs its layers over them). 0 for
        forms that do not model it (the target, host-side proposers, the presets' linear drafts)."""
        return 0.0 * tokens

    def per_sequence(self, kv, rows=None) -> float:
        """Seconds one more sequence adds besides its drafts (a drafter: the sequence's last committed token, its
        host work); by default one token's worth, `slope`."""
        return self.slope(1 if rows is None else rows, kv, rows)

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class LinearCost(StepCost):
    """c_fixed + c_tok * tokens + c_kv * kv  (works on scalars and numpy arrays; rows are ignored)."""

    form: ClassVar[str] = "linear"

    c_fixed: float
    c_tok: float
    c_kv: float

    def __post_init__(self):
        _numbers(self)

    def __call__(self, tokens, kv, rows=None):
        return self.c_fixed + self.c_tok * tokens + self.c_kv * kv

    def marginal(self, tokens, kv, extra, rows=None):
        return self.c_tok * extra

    def slope(self, tokens, kv, rows=None) -> float:
        return self.c_tok

    def fixed(self, kv, rows=None) -> float:
        return self.c_fixed + self.c_kv * kv

    def as_dict(self) -> dict[str, float]:
        return {"c_fixed": self.c_fixed, "c_tok": self.c_tok, "c_kv": self.c_kv}


@dataclass(frozen=True)
class VerifyFraction:
    """A draft step that costs a fixed fraction of the target step it precedes."""

    form: ClassVar[str] = "verify_fraction"
    scales_verify: ClassVar[bool] = True

    fraction: float

    def __post_init__(self):
        _numbers(self)

    def __call__(self, verify_time):
        return self.fraction * verify_time

    def as_dict(self) -> dict[str, float]:
        return {"fraction": self.fraction}


def _numbers(form) -> None:
    """A ValueError unless every field of the form is one number (a file may hold lists; these forms take none)."""
    for f in fields(form):
        value = getattr(form, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{f.name} = {value!r} must be one number (the {form.form} form)")


DraftCost = Union[StepCost, VerifyFraction]

MIN_STEP_SECONDS = 1e-9  # the least the cheapest step (one token, no KV, with its overhead) may cost: a nanosecond


@dataclass(frozen=True)
class CostModel:
    """Target, draft and overhead costs of one model on one machine."""

    name: str
    target: StepCost
    overhead: float  # seconds per step
    drafts: dict[str, DraftCost]
    switching: float = 0.0  # seconds per sequence that changes proposer
    decision: float = 0.0  # an online policy's host time per step (deciding, then learning from the outcome)
    decision_per_sequence: float = 0.0  # ... and per decoding sequence
    decision_drafting: float = 0.0  # ... and once more in a step where some sequence drafts (planning chains)
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    max_kv_tokens: int | None = None  # KV tokens the device memory holds (the simulator caps the batch); None: unbounded

    def draft(self, proposer: str) -> DraftCost:
        if proposer not in self.drafts:
            have = ", ".join(sorted(self.drafts)) or "none"
            raise SpecscopeError(
                f"cost model '{self.name}' has no draft cost for proposer '{proposer}' (it has: {have}); "
                f"add a [draft.{proposer}] table to the cost model, fit one with `specscope fit-cost`, or price "
                f"one with `specscope cost-model --draft {proposer}=MODEL`"
            )
        return self.drafts[proposer]

    def decision_seconds(self, sequences, drafting=False):
        """Seconds an online policy (`Policy.online`) spends in a step of `sequences` decoding sequences (0 where none
        decode), `drafting`: whether some of them draft; numpy-vectorised."""
        sequences = np.asarray(sequences, dtype=np.float64)
        out = np.where(sequences > 0, self.decision + self.decision_per_sequence * sequences
                       + self.decision_drafting * np.asarray(drafting, dtype=np.float64), 0.0)
        return out if out.ndim else float(out)

    def check_target(self, source=None) -> None:
        """A one-line SpecscopeError unless the cheapest step — the target on one token with no KV, plus the
        per-step overhead — takes at least MIN_STEP_SECONDS: every throughput divides by a sum of steps."""
        seconds = float(self.target(1, 0)) + self.overhead
        if not seconds >= MIN_STEP_SECONDS:
            raise SpecscopeError(
                f"{source or self.name}: the cheapest step ([target] on one token with no KV, plus [overhead] "
                f"per_step) takes {seconds:g} s; a step takes time (at least {MIN_STEP_SECONDS:g} s): give the target "
                "a fixed or per-token cost, or the overhead a per-step cost"
            )

    def to_toml_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "units": "seconds",
            "provenance": self.provenance,
            "target": {**({} if isinstance(self.target, LinearCost) else {"form": self.target.form}),
                       **self.target.as_dict()},
            "overhead": {"per_step": self.overhead, "switching": self.switching,
                         **({"decision_per_step": self.decision, "decision_per_sequence": self.decision_per_sequence,
                             "decision_drafting": self.decision_drafting}
                            if self.decision or self.decision_per_sequence or self.decision_drafting else {})},
            "draft": {name: {"form": form.form, **form.as_dict()} for name, form in self.drafts.items()},
            **({"memory": {"max_kv_tokens": self.max_kv_tokens}} if self.max_kv_tokens is not None else {}),
        }
