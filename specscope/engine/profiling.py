"""Profiling: time target and draft forward passes over a sweep of batch shapes, for `fit-cost`.

Each row is one measured configuration, `seconds` the median of a few repetitions after a warm-up:

- `decode` / `verify` rows: one target forward of B sequences with q = k + 1 tokens each (q = 1 is a
  plain decode step) at a per-sequence context of C tokens. num_batched_tokens = B*q,
  num_kv_tokens = B*C, num_draft_tokens = B*k.
- `prefill` rows: one target forward of B prompts of P tokens each, logits for each prompt's last
  token only (as the engine runs a prompt). num_batched_tokens = B*P, num_kv_tokens = 0.
- `draft:<proposer>` rows: one drafting call for B sequences of context C, k drafts each, as the engine's
  step makes it (the proposer behind the engine's `Drafter` with a fixed k, so the policy's and the
  drafter's host work are in; a draft model catches up one bonus token, then drafts). Following the
  simulator's convention (specscope/costs/model.py) num_draft_tokens = B*(k+1); num_batched_tokens =
  B*k tokens run through the draft model; num_kv_tokens = B*C.
- `sample` / `overhead` rows: those phases of every decode step of short engine runs per batch size:
  plain decoding (its draft phase, the drafter's bookkeeping with nothing to draft, counts as
  overhead), and each profiled proposer drafting k tokens per sequence (the `proposer` column; its
  draft phase is what the `draft:` rows time); batch_size is the step's sequences.

Columns and writer: `specscope/formats/profile.py`. KV contents are whatever the cache holds (timing does not depend on it).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Iterator

import numpy as np
import torch

from specscope.engine.drafting import Drafter
from specscope.engine.engine import Engine
from specscope.engine.proposers.base import Proposer, ProposerInput
from specscope.engine.scheduler import Request
from specscope.engine.timing import device_sync
from specscope.formats.profile import profile_row
from specscope.policy.fixed import FixedK
from specscope.settings import RunSettings



def median_seconds(fn: Callable[[int], None], reps: int, sync: Callable[[], None], warm_up: bool = True) -> float:
    """Median wall time of fn(rep) over `reps` calls, after one untimed warm-up call fn(-1) (unless `warm_up` is
    False: long calls on a model already warm)."""
    if warm_up:
        fn(-1)
    times = []
    for rep in range(reps):
        sync()
        start = time.perf_counter()
        fn(rep)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _random_tokens(vocab: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, vocab, size=n).astype(np.int64)


def profile_target(model, batch_sizes, ks, contexts, reps: int) -> Iterator[dict]:
    """Rows for target forwards of B sequences x (k + 1) tokens at context C."""
    sync = device_sync(model.device)
    vocab = model.config.vocab_size
    cache = model.new_cache(max(batch_sizes), max(contexts) + max(ks) + 1)
    for B in batch_sizes:
        for C in contexts:
            cache.lengths[:B] = C
            for k in ks:
                chunks = [_random_tokens(vocab, k + 1, seed=b) for b in range(B)]
                seconds = median_seconds(lambda rep: model.forward_chunks(cache, range(B), chunks), reps, sync)
                yield profile_row("decode" if k == 0 else "verify", B * (k + 1), B * C, B * k, seconds, B, k, C)


def profile_prefill(model, points, reps: int) -> Iterator[dict]:
    """Rows for prompt forwards of B sequences x P tokens (logits for each prompt's last token), per (B, P) point."""
    sync = device_sync(model.device)
    vocab = model.config.vocab_size
    for B, P in points:
        cache = model.new_cache(B, P + 1)
        chunks = [_random_tokens(vocab, P, seed=300 + b) for b in range(B)]

        def forward(rep):
            cache.lengths[:B] = 0
            model.forward_chunks(cache, range(B), chunks, num_logits=[1] * B)

        seconds = median_seconds(forward, reps, sync, warm_up=False)  # long forwards: the model is warm already
        yield profile_row("prefill", B * P, 0, 0, seconds, B, 0, P)


def profile_proposer(proposer: Proposer, name: str, vocab: int, device, batch_sizes, ks, contexts, reps: int) -> Iterator[dict]:
    """Rows for drafting calls of k drafts for B sequences at context C (each rep adds one new token), through
    the engine's `Drafter` with a fixed k."""
    sync = device_sync(device)
    ks = [k for k in ks if k > 0]
    if not ks:
        return
    proposer.bind(max(batch_sizes), max(contexts) + reps + max(ks) + 4)
    for B in batch_sizes:
        for C in contexts:
            tokens = [_random_tokens(vocab, C + reps + 2, seed=100 + b) for b in range(B)]
            for k in ks:
                drafter = Drafter({name: proposer}, FixedK((name,), k))
                drafter.policy.reset(B)
                for slot in range(B):
                    proposer.reset(slot)
                feats = _random_features(proposer, B, C + reps + 2, device)
                first = [t[:C] for t in tokens]
                drafter.propose(ProposerInput(list(range(B)), first, [k] * B, hidden=_hidden(feats, first)))  # fills caches
                drafter.observe(np.zeros(B, dtype=np.int64), np.zeros(B, dtype=bool))

                def call(rep):
                    contexts_now = [t[: C + 2 + rep] for t in tokens]  # one new (bonus) token per call
                    drafter.propose(ProposerInput(list(range(B)), contexts_now, [k] * B, hidden=_hidden(feats, contexts_now)))
                    drafter.observe(np.zeros(B, dtype=np.int64), np.zeros(B, dtype=bool))

                seconds = median_seconds(call, reps, sync)
                yield profile_row(f"draft:{name}", B * k, B * C, B * (k + 1), seconds, B, k, C)


def _random_features(proposer: Proposer, B: int, n: int, device):
    """Stand-in target features [n, dim] per sequence for proposers that read hidden states (None otherwise)."""
    if not proposer.needs_hidden:
        return None
    gen = torch.Generator().manual_seed(7)
    return [torch.randn(n, proposer.feature_dim, generator=gen).to(device) for _ in range(B)]


def _hidden(feats, contexts):
    """Features of every context token but the newest (what the engine hands over, and more)."""
    return None if feats is None else [f[: len(c) - 1] for f, c in zip(feats, contexts)]


def profile_step_phases(model, batch_sizes, proposers: dict[str, Proposer] | None = None, k: int = 3,
                        num_new: int = 12, context: int = 32) -> Iterator[dict]:
    """`sample` and `overhead` rows from the decode steps of short engine runs per batch size: plain decoding, and
    each of `proposers` drafting k tokens per sequence every step (rows name it in their `proposer` column)."""
    vocab = model.config.vocab_size
    runs = [("", None)] + [(name, p) for name, p in (proposers or {}).items()]
    for B in batch_sizes:
        requests = [Request(str(b), _random_tokens(vocab, context, seed=200 + b).tolist()) for b in range(B)]
        for name, proposer in runs:
            settings = RunSettings(batch_size=B, max_new_tokens=num_new)
            if proposer is None:
                engine = Engine.plain(model, settings)
            else:
                settings = settings.replace(method=name, k=k)
                engine = Engine(model, proposer, settings)
            for _ in engine.generate(requests):
                pass
            for step in engine.steps:
                if step.num_prefill == 0:
                    for kind in ("sample", "overhead"):
                        seconds = getattr(step, kind)
                        if kind == "overhead" and proposer is None:  # the drafter's bookkeeping, nothing drafted
                            seconds += step.draft
                        seconds = max(seconds, 1e-9)
                        yield profile_row(kind, step.num_batched_tokens, step.num_kv_tokens, step.proposed, seconds,
                                          step.num_seqs, k if proposer is not None else 0, context, name)
