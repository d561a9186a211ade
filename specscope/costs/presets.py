"""Cost-model presets: TOML data files in `specscope/presets/`, loaded by name or path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from specscope.costs.model import CostModel
from specscope.errors import SpecscopeError, unknown_name
from specscope.formats.cost_model import read_cost_model

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass


PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"


ADAPTIVE_DEFAULT = "smollm2-135m-cpu"  # the cost model `--k adaptive` decides under when none is named


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_cost_model(name_or_path: str | os.PathLike) -> CostModel:
    """A preset by name (see `available_presets`) or a cost-model TOML file by path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise SpecscopeError(f"cost model file '{path}' does not exist")
        return read_cost_model(path)
    preset = PRESET_DIR / f"{text}.toml"
    if not preset.is_file():
        err = unknown_name("cost model", text, available_presets())
        raise SpecscopeError(f"{err} (or pass the path of a cost-model .toml file)")
    return read_cost_model(preset)
