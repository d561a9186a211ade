"""Fixtures of the engine's distribution tests: a 16-token target whose sampling distribution is computed exactly,
and draft heads fitted to it (`tests/small_vocab.py`).

`small_model`: tiny_config with a 16-token vocabulary, seeded random weights, plain torch ops.
`fitted_heads`: kind -> folder of an EAGLE / EAGLE-3 / MTP head trained on `small_model` (drafts that get accepted).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_model():
    """A 16-token random target (`small_vocab.py`): its sampling distribution is computed exactly."""
    from small_vocab import small_vocab_model

    return small_vocab_model()


@pytest.fixture(scope="session")
def fitted_heads(small_model, tmp_path_factory):
    """kind -> folder of an EAGLE / EAGLE-3 / MTP head trained on `small_model` (drafts that get accepted)."""
    from small_vocab import fit_heads

    return fit_heads(small_model, tmp_path_factory.mktemp("fitted-heads"))
