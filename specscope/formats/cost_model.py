"""The cost-model TOML file: its tables, a validating reader and an atomic writer.

```toml
name = "fitted"
description = "..."
units = "seconds"
[provenance]                 # where the numbers come from (free-form table)
[target]                     # the target step: form = "linear" (default) with c_fixed, c_tok, c_kv, or another
                             # form's fields (specscope/costs/forms.py STEP_FORMS)
[overhead]
per_step = 1.2e-3            # seconds per step
switching = 0.0              # seconds per sequence that changes proposer (optional)
decision_per_step = 0.0      # an adaptive policy's own host time per step (optional; fitted from a profile's
decision_per_sequence = 0.0  # `decision` rows): deciding k and the proposer, and learning from what was accepted;
decision_drafting = 0.0      # per decoding sequence, and once more in a step where some sequence drafts
[draft.<proposer>]           # one per proposer: a step form, or form = "verify_fraction" with fraction
[memory]                     # optional: KV tokens the device memory holds next to the weights
max_kv_tokens = 443418       # (analytic models know it); the simulator caps the batch size to fit
```

Every coefficient is a number of seconds from 0 to MAX_SECONDS (finite), or a list of them; what a form's
fields mean is the form's business (`specscope/costs/forms.py`, which also requires the target step to take
time). This module knows the file, not the forms: unknown top-level keys and [overhead] keys are errors.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from specscope.errors import SpecscopeError, brief
from specscope.formats.files import read_toml, write_text_atomic

MAX_SECONDS = 1e6  # the largest coefficient: more than 11 days per step (or per token) is a unit mistake
TOP_LEVEL = ("name", "description", "units", "provenance", "target", "overhead", "draft", "memory")
DECISION = ("decision_per_step", "decision_per_sequence", "decision_drafting")  # an online policy's own time
OVERHEAD = ("per_step", "switching") + DECISION


def read_cost_model_toml(path: Path) -> dict:
    """The file's tables, validated: [target], [overhead] per_step, [draft.*] tables, numeric coefficients
    in [0, MAX_SECONDS], [provenance] a table. One-line errors name the file and the table."""
    data = read_toml(path, "cost model file")
    _known(data, TOP_LEVEL, "the top level", path)
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise SpecscopeError(f"{path}: {key} = {brief(data[key])} must be a string")
    if data.get("units", "seconds") != "seconds":
        raise SpecscopeError(f"{path}: units = {brief(data['units'])}; cost models are in \"seconds\"")
    target = _coefficients(_table(data, "target", path), "target", path)
    overhead = _table(data, "overhead", path)
    _known(overhead, OVERHEAD, "[overhead]", path)
    drafts = {}
    for name, table in _table(data, "draft", path, default={}).items():
        section = f"draft.{name}"
        if not isinstance(table, dict):
            raise SpecscopeError(f"{path}: [{section}] must be a table")
        drafts[name] = _coefficients(table, section, path)
    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict):
        raise SpecscopeError(f"{path}: [provenance] must be a table")
    return {
        "name": str(data.get("name", Path(path).stem)),
        "description": str(data.get("description", "")),
        "provenance": provenance,
        "target": target,
        "overhead": {"per_step": coefficient(overhead, "per_step", "overhead", path, scalar=True),
                     "switching": coefficient(overhead, "switching", "overhead", path, default=0.0, scalar=True),
                     **{key: coefficient(overhead, key, "overhead", path, default=0.0, scalar=True)
                        for key in DECISION}},
        "draft": drafts,
        "memory": _memory(data, path),
    }


def _memory(data: dict, path: Path) -> dict:
    """`[memory]` (optional): `max_kv_tokens`, a positive integer."""
    table = _table(data, "memory", path, default={})
    if "max_kv_tokens" not in table:
        return {}
    value = table["max_kv_tokens"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecscopeError(f"{path}: [memory] max_kv_tokens = {value!r} must be a positive integer (KV tokens "
                             "that fit in device memory); delete the table for no limit")
    return {"max_kv_tokens": value}


def write_cost_model_toml(path: str | os.PathLike, data: dict, header_comment: str = "") -> None:
    """Write the tables (as `read_cost_model_toml` returns them) atomically, with a `#` comment on top."""
    import tomli_w

    text = tomli_w.dumps(data)
    if header_comment:
        text = "".join(f"# {line}\n" for line in header_comment.splitlines()) + text
    write_text_atomic(path, text)


def _known(table: dict, keys, where: str, path: Path) -> None:
    for key in table:
        if key not in keys:
            raise SpecscopeError(f"{path}: {where} has an unknown key {brief(key)}; it takes {', '.join(keys)}")


def _table(data: dict, key: str, path: Path, default=None) -> dict:
    if key not in data:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: missing table [{key}]")
    if not isinstance(data[key], dict):
        raise SpecscopeError(f"{path}: [{key}] must be a table")
    return data[key]


SECONDS_FORMS = ("linear", "verify_fraction")  # forms whose coefficients are all seconds (or a share of them)


def _coefficients(table: dict, section: str, path: Path) -> dict:
    """A form's table: `form` (a name) and its coefficients, each validated: finite and >= 0, and at most
    MAX_SECONDS in the forms whose coefficients are seconds (others, e.g. the roofline's bytes and FLOP/s, are
    checked by their form)."""
    seconds = table.get("form", "linear") in SECONDS_FORMS
    out = {}
    for key, value in table.items():
        if key == "form":
            if not isinstance(value, str):
                raise SpecscopeError(f"{path}: [{section}] form = {brief(value)} must be a form's name")
            out[key] = value
        else:
            out[key] = coefficient(table, key, section, path, bound=MAX_SECONDS if seconds else math.inf)
    return out


def coefficient(table: dict, key: str, section: str, path: Path, default: float | None = None,
                scalar: bool = False, bound: float = MAX_SECONDS):
    """A coefficient (finite, in [0, bound]; seconds unless the form says otherwise), or (unless `scalar`) a
    non-empty list of them (nested lists too)."""
    if key not in table:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: [{section}] is missing '{key}'")
    value = table[key]
    if isinstance(value, list) and not scalar:
        if not value:
            raise SpecscopeError(f"{path}: [{section}] {key} = [] is an empty list; give at least one value")
        return [coefficient({key: v}, key, section, path, bound=bound) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecscopeError(f"{path}: [{section}] {key} = {brief(value)} is not a finite number")
    if value < 0:
        raise SpecscopeError(
            f"{path}: [{section}] {key} = {brief(value)} is negative; cost coefficients are seconds and must be >= 0"
        )
    if value > bound:
        raise SpecscopeError(f"{path}: [{section}] {key} = {brief(value)} is more than {bound:g} seconds; "
                             "cost coefficients are seconds (check the units)")
    return float(value)
