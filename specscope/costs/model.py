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
                sequence whose proposer differs from the one it drafted with last.

Consumers (the simulator, the adaptive decision) use only the `StepCost` interface, so a new form
(a measured surface, an analytic roofline) is one class here plus one entry in `STEP_FORMS`. The
file format (TOML) is `specscope/formats/cost_model.py`; presets `specscope/costs/presets.py`.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Union

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

    def __call__(self, verify_time):
        return self.fraction * verify_time

    def as_dict(self) -> dict[str, float]:
        return {"fraction": self.fraction}


DraftCost = Union[StepCost, VerifyFraction]

# Form name (the TOML's `form` key) -> class; the target takes a step form, a draft any of them.
STEP_FORMS: dict[str, type[StepCost]] = {LinearCost.form: LinearCost}
DRAFT_FORMS: dict[str, type] = {**STEP_FORMS, VerifyFraction.form: VerifyFraction}


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

    def draft(self, proposer: str) -> DraftCost:
        if proposer not in self.drafts:
            have = ", ".join(sorted(self.drafts)) or "none"
            raise SpecscopeError(
                f"cost model '{self.name}' has no draft cost for proposer '{proposer}' (it has: {have}); "
                f"add a [draft.{proposer}] table to the cost model or fit one with `specscope fit-cost`"
            )
        return self.drafts[proposer]

    @classmethod
    def from_toml_dict(cls, data: dict, source: Path | None = None) -> "CostModel":
        """A cost model from the tables `specscope/formats/cost_model.py` reads (coefficients already validated)."""
        return cls(
            name=data["name"], target=_form(data["target"], "target", source, STEP_FORMS),
            overhead=data["overhead"]["per_step"], switching=data["overhead"]["switching"],
            drafts={name: _form(table, f"draft.{name}", source, DRAFT_FORMS) for name, table in data["draft"].items()},
            description=data["description"], provenance=data["provenance"], source=source,
        )

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
        }


def _form(table: dict, section: str, source: Path | None, forms: dict[str, type]):
    """The cost form a table describes: `form` (default linear) picks the class, its fields are the coefficients;
    the class may reject values beyond "finite and >= 0" (ValueError), shown as one line."""
    kind = table.get("form", LinearCost.form)
    if kind not in forms:
        raise SpecscopeError(f"{source}: [{section}] form = {kind!r} is unknown. Available: {', '.join(forms)}")
    cls = forms[kind]
    names = [f.name for f in fields(cls)]
    missing = [name for name in names if name not in table]
    if missing:
        raise SpecscopeError(f"{source}: [{section}] is missing '{missing[0]}'")
    unknown = [key for key in table if key != "form" and key not in names]
    if unknown:
        raise SpecscopeError(f"{source}: [{section}] has an unknown key '{unknown[0]}'; the {kind} form takes "
                             f"{', '.join(names)}")
    try:
        return cls(**{f.name: table[f.name] for f in fields(cls)})
    except ValueError as err:
        raise SpecscopeError(f"{source}: [{section}] {err}") from None


# Forms defined in their own modules register themselves in STEP_FORMS / DRAFT_FORMS when imported (they import
# StepCost from here, hence the import at the end).
import specscope.costs.surface  # noqa: E402,F401  (forms "surface" and "chain": a measured step-time surface)
