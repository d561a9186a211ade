"""Cost-model forms: target step, draft step and per-step overhead, in seconds.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from specscope.errors import SpecscopeError

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass


LINEAR = "linear"


VERIFY_FRACTION = "verify_fraction"


DRAFT_FORMS = (LINEAR, VERIFY_FRACTION)


@dataclass(frozen=True)
class LinearCost:
    """c_fixed + c_tok * tokens + c_kv * kv  (works on scalars and numpy arrays)."""

    c_fixed: float
    c_tok: float
    c_kv: float

    def __call__(self, tokens, kv):
        return self.c_fixed + self.c_tok * tokens + self.c_kv * kv

    def as_dict(self) -> dict[str, float]:
        return {"c_fixed": self.c_fixed, "c_tok": self.c_tok, "c_kv": self.c_kv}


@dataclass(frozen=True)
class VerifyFraction:
    """A draft step that costs a fixed fraction of the target step it precedes."""

    fraction: float

    def __call__(self, verify_time):
        return self.fraction * verify_time

    def as_dict(self) -> dict[str, float]:
        return {"fraction": self.fraction}


DraftCost = Union[LinearCost, VerifyFraction]


@dataclass(frozen=True)
class CostModel:
    """Target, draft and overhead costs of one model on one machine."""

    name: str
    target: LinearCost
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

    def to_toml_dict(self) -> dict[str, Any]:
        drafts = {}
        for name, form in self.drafts.items():
            kind = LINEAR if isinstance(form, LinearCost) else VERIFY_FRACTION
            drafts[name] = {"form": kind, **form.as_dict()}
        return {
            "name": self.name,
            "description": self.description,
            "units": "seconds",
            "provenance": self.provenance,
            "target": self.target.as_dict(),
            "overhead": {"per_step": self.overhead, "switching": self.switching},
            "draft": drafts,
        }
