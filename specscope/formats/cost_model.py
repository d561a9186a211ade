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
[draft.<proposer>]           # one per proposer: a step form, or form = "verify_fraction" with fraction
[memory]                     # optional: KV tokens the device memory holds next to the weights
max_kv_tokens = 443418       # (analytic models know it); the simulator caps the batch size to fit
```

Every coefficient is a finite number >= 0 (seconds), or a list of them; what a form's fields mean
is the form's business (`specscope/costs/forms.py`). This module knows the file, not the forms.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from specscope.errors import SpecscopeError
from specscope.formats.files import write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_cost_model_toml(path: Path) -> dict:
    """The file's tables, validated: [target], [overhead] per_step, [draft.*] tables, numeric coefficients
    finite and >= 0, [provenance] a table. One-line errors name the file and the table."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecscopeError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise SpecscopeError(f"{path}: cannot read ({err.strerror})") from None
    target = _coefficients(_table(data, "target", path), "target", path)
    overhead = _table(data, "overhead", path)
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
        "overhead": {"per_step": coefficient(overhead, "per_step", "overhead", path),
                     "switching": coefficient(overhead, "switching", "overhead", path, default=0.0)},
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


def _table(data: dict, key: str, path: Path, default=None) -> dict:
    if key not in data:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: missing table [{key}]")
    if not isinstance(data[key], dict):
        raise SpecscopeError(f"{path}: [{key}] must be a table")
    return data[key]


def _coefficients(table: dict, section: str, path: Path) -> dict:
    """A form's table: `form` (a name) and its coefficients, each validated."""
    out = {}
    for key, value in table.items():
        if key == "form":
            if not isinstance(value, str):
                raise SpecscopeError(f"{path}: [{section}] form = {value!r} must be a form's name")
            out[key] = value
        else:
            out[key] = coefficient(table, key, section, path)
    return out


def coefficient(table: dict, key: str, section: str, path: Path, default: float | None = None):
    """A coefficient (seconds: finite, >= 0), or a list of them (nested lists too)."""
    if key not in table:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: [{section}] is missing '{key}'")
    value = table[key]
    if isinstance(value, list):
        return [coefficient({key: v}, key, section, path) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecscopeError(f"{path}: [{section}] {key} = {value!r} is not a finite number")
    if value < 0:
        raise SpecscopeError(
            f"{path}: [{section}] {key} = {value!r} is negative; cost coefficients are seconds and must be >= 0"
        )
    return float(value)
