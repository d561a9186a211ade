"""The cost-model TOML file: reading (validated, one-line errors) and writing.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from specscope.costs.model import (
    DRAFT_FORMS,
    LINEAR,
    VERIFY_FRACTION,
    CostModel,
    DraftCost,
    LinearCost,
    VerifyFraction,
)
from specscope.errors import SpecscopeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_cost_model(path: Path) -> CostModel:
    """Parse and validate a cost-model TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecscopeError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise SpecscopeError(f"{path}: cannot read ({err.strerror})") from None
    target = _linear(data, "target", path)
    overhead_table = _table(data, "overhead", path)
    overhead = _coefficient(overhead_table, "per_step", "overhead", path)
    switching = _coefficient(overhead_table, "switching", "overhead", path, default=0.0)
    drafts: dict[str, DraftCost] = {}
    for name, table in _table(data, "draft", path, default={}).items():
        section = f"draft.{name}"
        if not isinstance(table, dict):
            raise SpecscopeError(f"{path}: [{section}] must be a table")
        form = table.get("form", LINEAR)
        if form == LINEAR:
            drafts[name] = _linear(data["draft"], name, path, section=section)
        elif form == VERIFY_FRACTION:
            drafts[name] = VerifyFraction(_coefficient(table, "fraction", section, path))
        else:
            raise SpecscopeError(
                f"{path}: [{section}] form = {form!r} is unknown. Available: {', '.join(DRAFT_FORMS)}"
            )
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
    )


def _table(data: dict, key: str, path: Path, default=None) -> dict:
    if key not in data:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: missing table [{key}]")
    if not isinstance(data[key], dict):
        raise SpecscopeError(f"{path}: [{key}] must be a table")
    return data[key]


def _coefficient(table: dict, key: str, section: str, path: Path, default: float | None = None) -> float:
    if key not in table:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: [{section}] is missing '{key}'")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecscopeError(f"{path}: [{section}] {key} = {value!r} is not a finite number")
    if value < 0:
        raise SpecscopeError(
            f"{path}: [{section}] {key} = {value!r} is negative; cost coefficients are seconds and must be >= 0"
        )
    return float(value)


def _linear(data: dict, key: str, path: Path, section: str | None = None) -> LinearCost:
    section = section or key
    table = _table(data, key, path)
    return LinearCost(*(_coefficient(table, c, section, path) for c in ("c_fixed", "c_tok", "c_kv")))


def write_cost_model(path: str | os.PathLike, model: CostModel, header_comment: str = "") -> None:
    """Write `model` as a cost-model TOML file, atomically."""
    import tomli_w

    from specscope.formats.files import write_text_atomic

    text = tomli_w.dumps(model.to_toml_dict())
    if header_comment:
        text = "".join(f"# {line}\n" for line in header_comment.splitlines()) + text
    write_text_atomic(path, text)
