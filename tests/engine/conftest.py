"""Shared engine fixtures: a tiny random-weight model (fast) and the real default model (slow tests).

`tiny_model`: vocab 512, 3 layers, 4 query heads / 2 kv heads (GQA), seeded random weights, fp32, CPU.
`default_model`: SmolLM2-135M-Instruct from the embedded GGUF with its tokenizer, loaded once per session.
"""

from __future__ import annotations

import pytest
import torch

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
