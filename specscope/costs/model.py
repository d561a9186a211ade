"""Cost-model forms: how long a target step, a draft step and the per-step overhead take, in seconds.

- target step   T(N, KV): N = tokens in the step (all sequences batched), KV = tokens held in the KV
                cache by the running sequences at the start of the step. Any `StepCost` form; the
                presets and `fit-cost` use `LinearCost`, T = c_fixed + c_tok * N + c_kv * KV.
- draft step, one form per proposer:
    a `StepCost`       of (tokens, KV), where tokens = k + 1 per drafting sequence (the last
                       committed token plus the k drafts: the "scheduled tokens" of the published
                       fit) and KV is the batch's KV;
    `VerifyFraction`   fraction * T(N, KV) of the same step (cheap host-side proposers such as n-gram).
- overhead      a constant per step (scheduling, bookkeeping, sampling), plus `switching` per
                sequence whose proposer differs from the one it drafted with last.
- memory        optional: `max_kv_tokens`, the KV tokens the device memory holds next to the weights
                (analytic models know it); the simulator caps the batch so the longest request fits.

Consumers (the simulator, the adaptive decision) use only the `StepCost` interface, so a new form
(a measured surface, an analytic roofline) is one class plus one entry in `specscope/costs/forms.py`.
The file format (TOML) is `specscope/formats/cost_model.py`; presets `specscope/costs/presets.py`.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

from specscope.errors import SpecscopeError


class StepCost:
    """Seconds of one forward pass as a function of (tokens in the step, KV tokens); numpy-vectorised.

    Subclasses implement `__call__` and `as_dict`; the rest has exact defaults a form may override
    with closed forms. `scales_verify = False`: priced by its own tokens (draft forms share the flag
    with `VerifyFraction`, which is priced by the verify step instead).
    """

    form: ClassVar[str] = ""
    scales_verify: ClassVar[bool] = False

    def __call__(self, tokens, kv):
        raise NotImplementedError

    def marginal(self, tokens, kv, extra):
        """Seconds `extra` more tokens add to a step of `tokens` tokens."""
        return self(tokens + extra, kv) - self(tokens, kv)

    def slope(self, tokens, kv) -> float:
        """Seconds per token around a step of `tokens` tokens (what one more token adds)."""
        return self.marginal(tokens, kv, 1)

    def fixed(self, kv) -> float:
        """Seconds of the step's part that does not grow with its tokens: T(0, KV)."""
        return self(0, kv)

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class LinearCost(StepCost):
    """c_fixed + c_tok * tokens + c_kv * kv  (works on scalars and numpy arrays)."""

    form: ClassVar[str] = "linear"

    c_fixed: float
    c_tok: float
    c_kv: float

    def __call__(self, tokens, kv):
        return self.c_fixed + self.c_tok * tokens + self.c_kv * kv

    def marginal(self, tokens, kv, extra):
        return self.c_tok * extra

    def slope(self, tokens, kv) -> float:
        return self.c_tok

    def fixed(self, kv) -> float:
        return self.c_fixed + self.c_kv * kv

    def as_dict(self) -> dict[str, float]:
        return {"c_fixed": self.c_fixed, "c_tok": self.c_tok, "c_kv": self.c_kv}


@dataclass(frozen=True)
class VerifyFraction:
    """A draft step that costs a fixed fraction of the target step it precedes."""

    form: ClassVar[str] = "verify_fraction"
    scales_verify: ClassVar[bool] = True

    fraction: float

    def __call__(self, verify_time):
        return self.fraction * verify_time

    def as_dict(self) -> dict[str, float]:
        return {"fraction": self.fraction}


DraftCost = Union[StepCost, VerifyFraction]

@dataclass(frozen=True)
class CostModel:
    """Target, draft and overhead costs of one model on one machine."""

    name: str
    target: StepCost
    overhead: float  # seconds per step
    drafts: dict[str, DraftCost]
    switching: float = 0.0  # seconds per sequence that changes proposer
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

    def to_toml_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "units": "seconds",
            "provenance": self.provenance,
            "target": {**({} if isinstance(self.target, LinearCost) else {"form": self.target.form}),
                       **self.target.as_dict()},
            "overhead": {"per_step": self.overhead, "switching": self.switching},
            "draft": {name: {"form": form.form, **form.as_dict()} for name, form in self.drafts.items()},
            **({"memory": {"max_kv_tokens": self.max_kv_tokens}} if self.max_kv_tokens is not None else {}),
        }
