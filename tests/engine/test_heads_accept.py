"""Draft heads that really accept: EAGLE, EAGLE-3 and MTP heads fitted to the tiny target run their
accepted-draft paths many times per test, and greedy SD output still equals plain greedy decoding.

The heads are trained in the session (`small_vocab.fit_heads`, the `fitted_heads` fixture) on the
16-token target's own features, as `specscope train-head` would; EAGLE-3 and MTP use a reduced draft
vocabulary. Each run must accept >= 0.3 drafts per drafting row and step (0.44-0.81 here; random heads
accept ~0), with full acceptances (the bonus after the last draft), partial ones and rejections all
present; the two runs together accept 100+ drafts (~170 here), ~10 % of row-steps accepting all k.
The sampled paths of the same heads are checked for their distribution in `test_distribution_e2e.py`.

Run: pytest tests/engine/test_heads_accept.py
"""

from __future__ import annotations

import numpy as np
import pytest

from sd_helpers import run
from small_vocab import VOCAB, one_thread
from specscope.engine.scheduler import Request

K = 3
MAX_NEW = 24


@pytest.fixture(scope="module")
def requests():
    rng = np.random.default_rng(5)
    return [Request(f"g{i}", rng.integers(0, VOCAB, size=int(rng.integers(2, 10))).tolist()) for i in range(16)]


@pytest.fixture(scope="module")
def plain(small_model, requests):
    with one_thread():
        return run(small_model, requests, batch_size=8, max_new=MAX_NEW, stop=())[0]


@pytest.mark.parametrize("kind", ["eagle", "eagle3", "mtp"])
def test_fitted_heads_accept_and_decode_exactly(small_model, fitted_heads, requests, plain, kind):
    totals = np.zeros(4, dtype=np.int64)  # accepted drafts, full, partial, rejected at the first draft
    for batch_size, num in ((1, 4), (6, 16)):
        with one_thread():
            out, engine = run(small_model, requests[:num], kind, k=K, batch_size=batch_size, max_new=MAX_NEW,
                              draft=str(fitted_heads[kind]), stop=())
        for rid, seq in out.items():
            assert seq.output.tolist() == plain[rid].output.tolist(), (kind, batch_size, rid)
        per_row = [a for s in out.values() for p, a in zip(s.proposed, s.accepted) if p == K]
        counts = np.array([sum(per_row), sum(a == K for a in per_row), sum(0 < a < K for a in per_row),
                           sum(a == 0 for a in per_row)])
        assert counts[0] >= 0.3 * len(per_row) and counts[1:].min() >= 1, (kind, batch_size, counts.tolist())
        totals += counts
    assert totals[0] >= 100 and totals[1] >= 10 and totals[2:].min() >= 30, (kind, totals.tolist())
