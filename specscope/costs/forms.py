"""The cost forms by name (a cost-model TOML's `form` key), and a cost model built from the file's tables.

    costs = cost_model_from_tables(read_cost_model_toml(path), source=path)

The target takes a step form (`STEP_FORMS`); a draft takes any form (`DRAFT_FORMS`, which adds the
verify fraction). A new form is one class in its own module plus one entry here.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path

from specscope.costs.analytic import RooflineCost
from specscope.costs.model import CostModel, LinearCost, StepCost, VerifyFraction
from specscope.costs.surface import ChainCost, SurfaceCost
from specscope.errors import SpecscopeError

STEP_FORMS: dict[str, type[StepCost]] = {LinearCost.form: LinearCost, RooflineCost.form: RooflineCost,
                                         SurfaceCost.form: SurfaceCost}
DRAFT_FORMS: dict[str, type] = {**STEP_FORMS, ChainCost.form: ChainCost, VerifyFraction.form: VerifyFraction}


def cost_model_from_tables(data: dict, source: Path | None = None) -> CostModel:
    """A cost model from the tables `specscope/formats/cost_model.py` reads (coefficients already validated)."""
    model = CostModel(
        name=data["name"], target=form_from_table(data["target"], "target", source, STEP_FORMS),
        overhead=data["overhead"]["per_step"], switching=data["overhead"]["switching"],
        decision=data["overhead"]["decision_per_step"], decision_per_sequence=data["overhead"]["decision_per_sequence"],
        decision_drafting=data["overhead"]["decision_drafting"],
        drafts={name: form_from_table(table, f"draft.{name}", source, DRAFT_FORMS)
                for name, table in data["draft"].items()},
        description=data["description"], provenance=data["provenance"], source=source,
        max_kv_tokens=data.get("memory", {}).get("max_kv_tokens"),
    )
    model.check_target(source)
    return model


def form_from_table(table: dict, section: str, source: Path | None, forms: dict[str, type]):
    """The cost form a table describes: `form` (default linear) picks the class, its fields are the coefficients
    (a field with a default may be left out); the class may reject values beyond "finite and >= 0" (ValueError),
    shown as one line."""
    kind = table.get("form", LinearCost.form)
    if kind not in forms:
        raise SpecscopeError(f"{source}: [{section}] form = {kind!r} is unknown. Available: {', '.join(forms)}")
    cls = forms[kind]
    names = [f.name for f in fields(cls)]
    missing = [f.name for f in fields(cls) if f.name not in table and f.default is MISSING]
    if missing:
        raise SpecscopeError(f"{source}: [{section}] is missing '{missing[0]}'")
    unknown = [key for key in table if key != "form" and key not in names]
    if unknown:
        raise SpecscopeError(f"{source}: [{section}] has an unknown key '{unknown[0]}'; the {kind} form takes "
                             f"{', '.join(names)}")
    try:
        return cls(**{name: table[name] for name in names if name in table})
    except ValueError as err:
        raise SpecscopeError(f"{source}: [{section}] {err}") from None
