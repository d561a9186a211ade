"""The cost-model TOML file: reading (validated, one-line errors) and writing.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from dataclasses import MISSING, fields

from specscope.costs.model import DRAFT_FORMS, STEP_FORMS, CostModel, DraftCost, LinearCost
from specscope.errors import SpecscopeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_cost_model(path: Path) -> CostModel:
    """Parse and validate a cost-model TOML file (one-line errors naming the file and the table)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecscopeError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise SpecscopeError(f"{path}: cannot read ({err.strerror})") from None
    target = _form(_table(data, "target", path), "target", path, STEP_FORMS)
    overhead_table = _table(data, "overhead", path)
    overhead = _coefficient(overhead_table, "per_step", "overhead", path)
    switching = _coefficient(overhead_table, "switching", "overhead", path, default=0.0)
    drafts: dict[str, DraftCost] = {}
    for name, table in _table(data, "draft", path, default={}).items():
        section = f"draft.{name}"
        if not isinstance(table, dict):
            raise SpecscopeError(f"{path}: [{section}] must be a table")
        drafts[name] = _form(table, section, path, DRAFT_FORMS)
    max_kv_tokens = _max_kv_tokens(data, path)
    name = data.get("name", path.stem)
    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict):
        raise SpecscopeError(f"{path}: [provenance] must be a table")
    return CostModel(
        name=str(name),
        target=target,
        overhead=overhead,
        drafts=drafts,
        switching=switching,
        description=str(data.get("description", "")),
        provenance=provenance,
        source=path,
        max_kv_tokens=max_kv_tokens,
    )


def _max_kv_tokens(data: dict, path: Path) -> int | None:
    """`[memory] max_kv_tokens` (optional): KV tokens the device memory holds; a positive integer."""
    table = _table(data, "memory", path, default={})
    if "max_kv_tokens" not in table:
        return None
    value = table["max_kv_tokens"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecscopeError(f"{path}: [memory] max_kv_tokens = {value!r} must be a positive integer (KV tokens "
                             "that fit in device memory); delete the table for no limit")
    return value


def _table(data: dict, key: str, path: Path, default=None) -> dict:
    if key not in data:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: missing table [{key}]")
    if not isinstance(data[key], dict):
        raise SpecscopeError(f"{path}: [{key}] must be a table")
    return data[key]


def _form(table: dict, section: str, path: Path, forms: dict[str, type]):
    """The cost form a table describes: `form` (default linear) picks the class, its fields are the coefficients
    (seconds, >= 0; a form may take lists of them), checked by the class itself beyond that."""
    kind = table.get("form", LinearCost.form)
    if kind not in forms:
        raise SpecscopeError(f"{path}: [{section}] form = {kind!r} is unknown. Available: {', '.join(forms)}")
    cls = forms[kind]
    params = {f.name: _coefficient(table, f.name, section, path, default=None if f.default is MISSING else f.default)
              for f in fields(cls)}
    try:
        return cls(**params)
    except ValueError as err:
        raise SpecscopeError(f"{path}: [{section}] {err}") from None


def _coefficient(table: dict, key: str, section: str, path: Path, default: float | None = None):
    """A coefficient (seconds, finite, >= 0), or a list of them (nested lists too)."""
    if key not in table:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: [{section}] is missing '{key}'")
    value = table[key]
    if isinstance(value, list):
        return [_coefficient({key: v}, key, section, path) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecscopeError(f"{path}: [{section}] {key} = {value!r} is not a finite number")
    if value < 0:
        raise SpecscopeError(
            f"{path}: [{section}] {key} = {value!r} is negative; cost coefficients are seconds and must be >= 0"
        )
    return float(value)


def write_cost_model(path: str | os.PathLike, model: CostModel, header_comment: str = "") -> None:
    """Write `model` as a cost-model TOML file, atomically."""
    import tomli_w

    from specscope.formats.files import write_text_atomic

    text = tomli_w.dumps(model.to_toml_dict())
    if header_comment:
        text = "".join(f"# {line}\n" for line in header_comment.splitlines()) + text
    write_text_atomic(path, text)
