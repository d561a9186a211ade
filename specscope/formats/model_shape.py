"""Files a model's shape is read from: a Hugging Face `config.json`, a GGUF file's metadata, the shipped
`specscope/data/models.toml`. Each reader returns plain dicts (one-line errors for unreadable files);
`specscope/costs/shapes.py` turns them into a `ModelShape` and names missing fields.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from specscope.errors import SpecscopeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MODELS_TOML = Path(__file__).resolve().parents[1] / "data" / "models.toml"


def read_models_toml(path: Path = MODELS_TOML) -> dict[str, dict]:
    """The shipped shapes: name -> table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise SpecscopeError(f"{path}: cannot read the shipped model shapes ({err})") from None
    return {name: table for name, table in data.items() if isinstance(table, dict)}


def read_hf_config(path: Path) -> dict:
    """A Hugging Face config.json (or a folder holding one) as a dict."""
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise SpecscopeError(f"{path}: no config.json there; pass a model's config.json, its folder, a .gguf file "
                             "or a shipped model name")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecscopeError(f"{file}: not a readable JSON config ({err})") from None
    if not isinstance(data, dict):
        raise SpecscopeError(f"{file}: expected a JSON object of model settings")
    if "num_hidden_layers" not in data and isinstance(data.get("text_config"), dict):
        data = {**data["text_config"], "_name_or_path": data.get("_name_or_path", "")}  # multimodal wrappers
    return data


@dataclass(frozen=True)
class GGUFTensor:
    """What the shape needs of one GGUF tensor: its name, storage type, element and byte counts."""

    name: str
    type_name: str
    elements: int
    nbytes: int


def read_gguf_metadata(path: Path) -> tuple[dict, list[GGUFTensor]]:
    """(metadata key -> value, tensors) of a GGUF file, without loading the weights."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise SpecscopeError(f"{path}: reading GGUF metadata needs the `gguf` package; pip install 'specscope[engine]' "
                             "or pass the model's config.json") from None
    try:
        reader = GGUFReader(str(path))
    except Exception as err:  # the gguf package raises assorted errors on bad files
        raise SpecscopeError(f"{path}: not a readable GGUF file ({str(err).splitlines()[0] if str(err) else err!r})") from None
    fields = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            continue  # vocabulary arrays: not part of the shape
        try:
            fields[key] = field.contents()
        except Exception:  # a field type the package cannot decode: not one the shape reads
            continue
    tensors = [GGUFTensor(t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in reader.tensors]
    return fields, tensors
