"""Fixtures shared across the suite: a tiny random-weight model (fast), the real default model and its tokenizer
(slow tests), and a writer of prompt files.

`tiny_model`: vocab 512, 3 layers, 4 query heads / 2 kv heads (GQA), seeded random weights, fp32, CPU.
`default_model_and_tokenizer`: SmolLM2-135M-Instruct from the embedded GGUF with its tokenizer, loaded once.
`real_tokenizer`: the embedded default model's tokenizer with its chat template, loaded once.
`write_jsonl`: writes rows as a JSONL file under tmp_path.
`word_tokenizer`: a whitespace tokenizer with the slice of the Hugging Face API that rendering uses (fast).
"""

from __future__ import annotations

import json

import pytest
import torch
from word_tokenizer import WordTokenizer

from specscope.engine.model import random_model, tiny_config


@pytest.fixture(scope="session")
def tiny_config_():
    """The config of `tiny_model`."""
    return tiny_config()


@pytest.fixture(scope="session")
def tiny_model(tiny_config_):
    """A tiny random-weight llama-architecture DecoderModel (deterministic, seed 0)."""
    return random_model(tiny_config_, seed=0)


@pytest.fixture(scope="session")
def default_model_and_tokenizer():
    """(DecoderModel, tokenizer) of the embedded default model in fp32 on CPU."""
    from specscope.engine.loading import load_model

    torch.manual_seed(0)
    return load_model(None, device="cpu", dtype=torch.float32, quant="none")


@pytest.fixture(scope="session")
def real_tokenizer():
    """The embedded SmolLM2-135M-Instruct tokenizer with its chat template (~15 s, once per session)."""
    from specscope.engine.loading import load_tokenizer

    return load_tokenizer()


@pytest.fixture
def write_jsonl(tmp_path):
    """Write rows as JSONL into tmp_path and return the path."""

    def write(rows, name="prompts.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path

    return write


@pytest.fixture
def word_tokenizer():
    return WordTokenizer()
