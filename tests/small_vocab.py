"""A 16-token random target whose sampling distribution is computed exactly, and draft heads fitted to it.

With 16 tokens, plain decoding's distribution over the first four output tokens is an exact sum over
16^3 contexts (`exact_marginals`), so an engine run's emitted tokens can be compared with it by
chi-square. `fit_heads` trains EAGLE, EAGLE-3 and MTP heads on the target's own features (as
`specscope train-head` does, a few seconds each on one CPU thread), so drafts are really accepted,
greedy and sampled: EAGLE over the full vocabulary, EAGLE-3 and MTP over a reduced 12-token draft
vocabulary (d2t), so the mapping of q from draft to target ids is on the tested path too.

Used by the fixtures in `tests/engine/conftest.py` (`small_model`, `fitted_heads`).
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from specscope.engine.model import random_model, tiny_config
from specscope.engine.sampling import sampling_probs
from specscope.engine.scheduler import Request
from specscope.settings import RunSettings

VOCAB = 16
HEAD_VOCAB = {"eagle": 0, "eagle3": 12, "mtp": 12}  # draft vocabulary per kind (0 = the full 16 tokens)


@contextmanager
def one_thread():
    """Tiny matrices: one torch thread is fastest, and on a shared 2-core machine far faster than two."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def small_vocab_model():
    """tiny_config with a 16-token vocabulary, seeded random weights, plain torch ops (fastest at this size)."""
    model = random_model(tiny_config(vocab_size=VOCAB, name="tiny-v16"), seed=0)
    model.kernels = "torch"
    return model


def continuations(model, num: int, max_new: int, temperature: float, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    """(prompt + output, prompt length) of `num` random prompts, decoded at `temperature` (0: greedy)."""
    from specscope.engine.engine import Engine

    rng = np.random.default_rng(seed)
    requests = [Request(f"fit{i}", rng.integers(0, VOCAB, size=int(rng.integers(3, 9))).tolist()) for i in range(num)]
    engine = Engine.plain(model, RunSettings(batch_size=num, max_new_tokens=max_new, temperature=temperature, seed=seed))
    return [(seq.context.copy(), seq.prompt_len) for seq in engine.generate(requests)]


def fit_heads(model, folder: Path, epochs: int = 6) -> dict[str, Path]:
    """Train one head of each kind on the model's features (labels: its greedy choices); returns kind -> folder."""
    from specscope.engine.heads.checkpoint import save_head
    from specscope.engine.heads.data import target_features
    from specscope.engine.heads.training import TrainSettings, train_head

    out = {}
    with one_thread():
        # greedy continuations (what greedy SD meets) and sampled ones (varied contexts, for sampled SD)
        sequences = continuations(model, 48, 40, 0.0, seed=1) + continuations(model, 48, 40, 1.0, seed=0)
        data = target_features(model, [s for s, _ in sequences], [n for _, n in sequences])
        for kind, vocab in HEAD_VOCAB.items():
            settings = TrainSettings(kind=kind, epochs=epochs, lr=3e-3, draft_vocab=vocab, seqs_per_step=4, seed=0)
            head, _ = train_head(model, data, settings)
            out[kind] = save_head(head, Path(folder) / kind)
    return out


@torch.inference_mode()
def exact_marginals(model, prompt: list[int], temperature: float, top_p: float, depth: int = 4) -> torch.Tensor:
    """[depth, VOCAB] float64: P(output token j = x) under plain sampling, exactly (a sum over VOCAB^(depth-1) prefixes)."""
    prefixes = torch.tensor(list(itertools.product(range(VOCAB), repeat=depth - 1)), dtype=torch.long)
    n, L = len(prefixes), len(prompt) + depth - 1
    cache = model.new_cache(n, L)
    chunks = [torch.cat([torch.tensor(prompt), row]) for row in prefixes]
    logits = torch.stack(model.forward_chunks(cache, list(range(n)), chunks, num_logits=[depth] * n).logits)
    probs = sampling_probs(logits, temperature, top_p).double()  # [n, depth, V]: row j predicts output token j
    marginals = torch.zeros(depth, VOCAB, dtype=torch.float64)
    weight = torch.ones(n, dtype=torch.float64)  # P(output tokens 0..j-1 = the prefix's first j tokens)
    for j in range(depth):
        # each prefix of length j appears VOCAB^(depth-1-j) times among the rows: count it once
        first = (prefixes[:, j:] == 0).all(dim=1) if j < depth - 1 else torch.ones(n, dtype=torch.bool)
        marginals[j] = (weight[first, None] * probs[first, j]).sum(0)
        if j < depth - 1:
            weight = weight * probs[torch.arange(n), j, prefixes[:, j]]
    return marginals
