"""Profiling: time target and draft forward passes over a sweep of batch shapes, for `fit-cost`.

Each function times every configuration `reps` times and yields one row per configuration, `seconds`
the median (the study calls them with reps = 1 once per round and takes the median over rounds, so
that a configuration's timings are spread over the whole profile rather than taken in one moment:
`specscope/study/profiling.py`); a `catch_up:` row is one call per function call (a drafter meets a
sequence once):

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
- `catch_up:<proposer>` rows: the drafter's first call for B sequences it has not seen (one per (B, C), at
  the middle k; the `draft:` rows of that (B, C) follow on the same sequences): it takes in their C
  context tokens (a draft model or head runs over them), then drafts k each, as at a sequence's first
  decode step in the engine. num_batched_tokens = B*C (the tokens taken in), the other columns as the
  `draft:` row of the same shape.
- `decision` rows: an online (adaptive) policy's own time in every decode step of a short run under it,
  deciding and observing (`StepRecord.decision`); batch_size is the step's sequences.
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
from specscope.formats.profile import CATCH_UP_PREFIX, DECISION_KIND, profile_row
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


def profile_target(model, batch_sizes, ks, contexts, reps: int, warm_up: bool = True) -> Iterator[dict]:
    """Rows for target forwards of B sequences x (k + 1) tokens at context C (`warm_up`: one untimed call first)."""
    sync = device_sync(model.device)
    vocab = model.config.vocab_size
    cache = model.new_cache(max(batch_sizes), max(contexts) + max(ks) + 1)
    for B in batch_sizes:
        for C in contexts:
            cache.lengths[:B] = C
            for k in ks:
                chunks = [_random_tokens(vocab, k + 1, seed=b) for b in range(B)]
                seconds = median_seconds(lambda rep: model.forward_chunks(cache, range(B), chunks), reps, sync, warm_up)
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


def profile_proposer(proposer: Proposer, name: str, vocab: int, device, batch_sizes, ks, contexts, reps: int,
                     warm_up: bool = True) -> Iterator[dict]:
    """Per (B, C): a `catch_up:` row, the drafter's first call for B new sequences of context C (drafting the
    middle k), then a `draft:` row per k, its calls of k drafts each (each call adds one new token to every
    context), through the engine's `Drafter` with a fixed k (`warm_up`: one untimed call per k first)."""
    sync = device_sync(device)
    ks = [k for k in ks if k > 0]
    if not ks:
        return
    calls = len(ks) * (reps + int(warm_up))
    proposer.bind(max(batch_sizes), max(contexts) + calls + max(ks) + 4)
    for B in batch_sizes:
        for C in contexts:
            tokens = [_random_tokens(vocab, C + calls + 1, seed=100 + b) for b in range(B)]
            feats = _random_features(proposer, B, C + calls + 1, device)
            for slot in range(B):
                proposer.reset(slot)
            length = C

            def call(drafter, length):
                contexts_now = [t[:length] for t in tokens]
                drafter.propose(ProposerInput(list(range(B)), contexts_now, [drafter.policy.k] * B,
                                              hidden=_hidden(feats, contexts_now)))
                drafter.observe(np.zeros(B, dtype=np.int64), np.zeros(B, dtype=bool))

            first = ks[len(ks) // 2]
            drafter = _fixed_drafter(proposer, name, first, B)
            catch_up = median_seconds(lambda rep: call(drafter, C), 1, sync, warm_up=False)  # takes in the C tokens
            yield profile_row(f"{CATCH_UP_PREFIX}{name}", B * C, B * C, B * (first + 1), catch_up, B, first, C)
            for k in ks:
                drafter = _fixed_drafter(proposer, name, k, B)
                times = []
                for _ in range(reps + int(warm_up)):  # one new token a call
                    length += 1
                    times.append(median_seconds(lambda rep: call(drafter, length), 1, sync, warm_up=False))
                seconds = statistics.median(times[int(warm_up):])
                yield profile_row(f"draft:{name}", B * k, B * C, B * (k + 1), seconds, B, k, C)


def _fixed_drafter(proposer: Proposer, name: str, k: int, rows: int) -> Drafter:
    drafter = Drafter({name: proposer}, FixedK((name,), k))
    drafter.policy.reset(rows)
    return drafter


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
                        num_new: int = 12, context: int = 32,
                        online: Callable[[], tuple[Drafter, RunSettings]] | None = None) -> Iterator[dict]:
    """`sample` and `overhead` rows from the decode steps of short engine runs per batch size: plain decoding, and
    each of `proposers` drafting k tokens per sequence every step (rows name it in their `proposer` column); with
    `online` (a factory of an online policy's drafter and its run settings), `decision` rows from a run under it:
    its policy's own time per step (`StepRecord.decision`)."""
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
        if online is not None:
            drafter, settings = online()
            engine = Engine(model, drafter, settings.replace(batch_size=B, max_new_tokens=num_new))
            for _ in engine.generate(requests):
                pass
            for step in engine.steps:
                if step.num_prefill == 0:
                    yield profile_row(DECISION_KIND, step.num_batched_tokens, step.num_kv_tokens, step.proposed,
                                      max(step.decision, 1e-9), step.num_seqs, 0, context, drafter.label)
