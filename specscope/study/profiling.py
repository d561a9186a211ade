"""Profile a run's target and proposers: time their forwards over batch shapes into the profile CSV `fit-cost` reads.

    rows = profile(backend, settings, proposers=["ngram", "draft"], batch_sizes=[1, 4, 16], ks=[0, 1, 3, 5],
                   contexts=[128, 512], reps=3, path=Path("profile.csv"))

What each row times: `specscope/engine/profiling.py`; the file: `specscope/formats/profile.py`.
Used by `specscope profile` and a sweep's [profile] step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from specscope.errors import SpecscopeError
from specscope.formats.profile import write_profile
from specscope.settings import RunSettings
from specscope.study.engine_backend import EngineBackend


def profile_points(batch_sizes, ks, contexts, proposers) -> int:
    """How many timed points (progress units) a profile has."""
    return len(batch_sizes) * len(contexts) * (len(ks) + len(proposers) * len([k for k in ks if k > 0])) + len(batch_sizes)


def profile(backend: EngineBackend, settings: RunSettings, proposers: list[str], batch_sizes: list[int], ks: list[int],
            contexts: list[int], reps: int, path: Path,
            advance: Callable[[float], None] | None = None) -> tuple[list[dict], dict[str, str]]:
    """Time target and draft forwards; write `path`; returns (the rows, each proposer's label).
    `advance(points)` reports progress."""
    from specscope.engine.profiling import profile_proposer, profile_step_phases, profile_target

    device, target, _, _ = backend.load()
    if max(contexts) + max(ks) + 1 > target.config.max_position:
        raise SpecscopeError(f"--contexts {max(contexts)} exceeds the model's context of {target.config.max_position} tokens")
    greedy = settings.replace(temperature=0.0, top_p=1.0, k=max(ks))
    built = {n: backend.proposer(n, greedy) for n in proposers}
    step = advance or (lambda points: None)
    rows = []
    for row in profile_target(target, batch_sizes, ks, contexts, reps):
        rows.append(row)
        step(1)
    for name, proposer in built.items():
        for row in profile_proposer(proposer, name, target.config.vocab_size, device, batch_sizes, ks, contexts, reps):
            rows.append(row)
            step(1)
    rows.extend(profile_step_phases(target, batch_sizes))
    step(len(batch_sizes))
    write_profile(path, rows)
    return rows, {n: p.label for n, p in built.items()}
