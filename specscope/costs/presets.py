"""Cost models by name or path: the presets (TOML data files in `specscope/presets/`) and the user's own files.

    costs = load_cost_model("llama3.1-8b-h100")      # a preset
    costs = load_cost_model("study/cost_model.toml")  # a file
    write_cost_model(path, costs, header_comment="fitted by ...")

The file format is `specscope/formats/cost_model.py`; the forms `specscope/costs/model.py`. Add a
preset by dropping a `<name>.toml` into `specscope/presets/`: the numbers live in data, with their
provenance, never in code.
"""

from __future__ import annotations

import os
from pathlib import Path

from specscope.costs.forms import cost_model_from_tables
from specscope.costs.model import CostModel
from specscope.errors import SpecscopeError, unknown_name
from specscope.formats.cost_model import read_cost_model_toml, write_cost_model_toml

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"


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


def read_cost_model(path: Path) -> CostModel:
    """The cost model in a TOML file (one-line errors naming the file and the table)."""
    return cost_model_from_tables(read_cost_model_toml(path), source=path)


def write_cost_model(path: str | os.PathLike, model: CostModel, header_comment: str = "") -> None:
    """Write `model` as a cost-model TOML file, atomically."""
    write_cost_model_toml(path, model.to_toml_dict(), header_comment)
