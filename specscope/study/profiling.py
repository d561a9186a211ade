"""Profile a run's target and proposers: time their forwards over batch shapes into the profile CSV `fit-cost` reads.

    rows = profile(backend, settings, proposers=["ngram", "draft"], batch_sizes=[1, 4, 16], ks=[0, 1, 3, 5],
                   contexts=[128, 512], reps=3, path=Path("profile.csv"))

What each row times: `specscope/engine/profiling.py`; the file: `specscope/formats/profile.py`.
Used by `specscope profile` and a sweep's [profile] step. Prompt (prefill) forwards are timed at every
(batch size, context) of at most `PREFILL_MAX_TOKENS` tokens in all (`prefill_points`); the step phases
(sample, overhead) in short runs per batch size, plain and with each proposer at the middle k, and an
adaptive policy's own time per step (decision) in a short `--k adaptive` run over the first proposer.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable

from specscope.errors import SpecscopeError
from specscope.formats.profile import CATCH_UP_PREFIX, write_profile
from specscope.settings import AdaptiveSettings, RunSettings
from specscope.study.engine_backend import EngineBackend


PREFILL_MAX_TOKENS = 1024  # the largest prompt forward profiled (tokens of all its sequences)
WARM_ROUNDS_FROM = 3  # rounds from which the median drops the first (cold) round's timings itself


def prefill_points(batch_sizes, contexts) -> list[tuple[int, int]]:
    """(B, P) prompt forwards to time: every batch size x context of at most PREFILL_MAX_TOKENS tokens (at least
    one: the smallest)."""
    points = [(b, c) for b in sorted(batch_sizes) for c in sorted(contexts) if b * c <= PREFILL_MAX_TOKENS]
    return points or [(min(batch_sizes), min(contexts))]


def phase_k(ks) -> int:
    """The k the step-phase runs draft with: the middle of the profiled ks > 0."""
    drafting = sorted(k for k in ks if k > 0)
    return drafting[len(drafting) // 2] if drafting else 0


def profile_points(batch_sizes, ks, contexts, proposers) -> int:
    """How many timed points (progress units) a profile has."""
    phases = len(batch_sizes) * (1 + (len(proposers) if phase_k(ks) else 0))
    return (len(batch_sizes) * len(contexts) * (len(ks) + len(proposers) * len([k for k in ks if k > 0]))
            + len(prefill_points(batch_sizes, contexts)) + phases)


def median_rows(rows: list[dict]) -> list[dict]:
    """One row per configuration (every column but `seconds` alike), in first-seen order, its seconds the median
    of its rows'."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple((c, v) for c, v in row.items() if c != "seconds"), []).append(row)
    return [{**same[0], "seconds": statistics.median(r["seconds"] for r in same)} for same in groups.values()]


def _online_drafter(backend: EngineBackend, settings: RunSettings, proposer: str):
    """A factory of the drafter `--k adaptive` builds over `proposer` (deciding under the default adaptive cost
    model: what a decision costs hardly depends on the prices it weighs), for the profile's `decision` rows; None
    where that cost model cannot price `proposer`."""
    from specscope.costs.presets import load_cost_model

    adaptive = AdaptiveSettings()
    if proposer not in load_cost_model(adaptive.cost_model).drafts:
        return None
    online = settings.replace(method=proposer, adaptive=adaptive)
    return lambda: (backend.drafter(online), online)


def profile(backend: EngineBackend, settings: RunSettings, proposers: list[str], batch_sizes: list[int], ks: list[int],
            contexts: list[int], reps: int, path: Path,
            advance: Callable[[float], None] | None = None) -> tuple[list[dict], dict[str, str]]:
    """Time target and draft forwards; write `path`; returns (the rows, each proposer's label).
    `advance(points)` reports progress.

    The forwards are timed in `reps` rounds, each over every configuration once, and a configuration's seconds
    are the median over the rounds: a shared machine's speed drifts by 10-20 % over seconds, and timings of
    one configuration taken back to back all land in one phase of it, which then biases that configuration's
    point of the fitted surface. Spread over the profile,
    they average over its phases instead. From `WARM_ROUNDS_FROM` rounds on the first round is also the warm-up
    (the median drops a cold call); with fewer, one untimed round runs first."""
    from specscope.engine.profiling import profile_prefill, profile_proposer, profile_step_phases, profile_target
    from specscope.study.engine_backend import hardware

    device, target, _, model_name = backend.load()
    if max(contexts) + max(ks) + 1 > target.config.max_position:
        raise SpecscopeError(f"--contexts {max(contexts)} exceeds the model's context of {target.config.max_position} tokens")
    greedy = settings.replace(temperature=0.0, top_p=1.0, k=max(ks))
    built = {n: backend.proposer(n, greedy) for n in proposers}
    step = advance or (lambda points: None)
    timed = []
    rounds = reps if reps >= WARM_ROUNDS_FROM else reps + 1  # fewer rounds: one more first, untimed (a warm-up)
    for round_ in range(rounds):
        parts = [profile_target(target, batch_sizes, ks, contexts, 1, warm_up=False),
                 profile_prefill(target, prefill_points(batch_sizes, contexts), 1)]
        parts += [profile_proposer(proposer, name, target.config.vocab_size, device, batch_sizes, ks, contexts, 1,
                                   warm_up=False) for name, proposer in built.items()]
        for part in parts:
            for row in part:
                if round_ >= rounds - reps:  # not the warm-up round
                    timed.append(row)
                if not row["step_kind"].startswith(CATCH_UP_PREFIX):  # timed with its draft row: one point
                    step(1 / rounds)
    rows = median_rows(timed)
    k = phase_k(ks)
    online = _online_drafter(backend, greedy, proposers[0]) if proposers and k else None
    for b in batch_sizes:
        rows.extend(profile_step_phases(target, [b], built if k else None, k=k, online=online))
        step(1 + (len(built) if k else 0))
    write_profile(path, rows, model=model_name, hardware=hardware(device))
    return rows, {n: p.label for n, p in built.items()}
