"""The engine side of a sweep: every measured cell, trace and profile on ONE loaded target.

Loading torch, the model and the tokenizer takes seconds; a sweep pays it once, not per cell. Cells
are measured with `specscope.study.measure.measure`, as `specscope run` measures, so a cell's files
are what `specscope run -o runs/<cell>` writes, except `peak_rss_mb`: here it is the cell's own peak
(`specscope/study/memory.py`), marked `"peak_rss_scope": "cell"`. Traces and the profile are
`specscope.study.tracing` and `specscope.study.profiling`, as `specscope trace` and `profile` run them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from specscope.settings import RunSettings
from specscope.study import memory
from specscope.study.engine_backend import EngineBackend
from specscope.study.measure import measure
from specscope.study.profiling import profile
from specscope.study.prompts import run_prompts
from specscope.study.sweep.config import run_settings
from specscope.study.tracing import record_traces

Progress = Callable[[float], None]  # called with the fraction of the current step just completed


class EngineSession:
    """The sweep's engine backend (the target loaded once) and its prompts, cached per workload."""

    def __init__(self, engine: dict):
        self.backend = EngineBackend(run_settings(engine), warm=True)
        self._prompts: dict[tuple, list] = {}

    def load(self) -> None:
        self.backend.load()

    def prompts(self, settings: RunSettings) -> list:
        key = (settings.workload, settings.num_prompts, settings.seed)
        if key not in self._prompts:
            self._prompts[key] = run_prompts(settings)
        return self._prompts[key]

    def run_cell(self, s: dict, folder: Path, advance: Progress) -> dict:
        """Measure one cell into `folder`; returns its summary."""
        settings = run_settings(s)
        prompts = self.prompts(settings)
        scoped = memory.reset_peak()

        def extra() -> dict:
            peak = memory.peak_rss_mb() if scoped else None
            out = {"repeat": s.get("repeat", 1)}
            return {**out, "peak_rss_mb": peak, "peak_rss_scope": "cell"} if peak is not None else out

        return measure(self.backend, settings, prompts, folder, keep_partial=False, summary_extra=extra,
                       on_request=lambda record, made, seconds: advance(1 / max(len(prompts), 1)))

    def cell_prompts(self, settings: RunSettings, counts: list[int]) -> list:
        """The union of the prompt sets the workload's cells run (one per prompt count), in first-seen order of the
        largest set first: what a trace records so that every cell's requests are in it."""
        seen: dict[str, object] = {}
        for n in sorted(counts, reverse=True):
            for prompt in self.prompts(settings.replace(num_prompts=n)):
                seen.setdefault(prompt.id, prompt)
        return list(seen.values())

    def trace(self, s: dict, path: Path, advance: Progress) -> dict:
        """Record per-position acceptance traces of one workload into `path` (native format): the prompts of its
        measured cells (`cell_prompts` in the step's settings), or `num_prompts` of them."""
        settings = run_settings(s)
        prompts = self.cell_prompts(settings, s["cell_prompts"]) if s.get("cell_prompts") else self.prompts(settings)
        return record_traces(self.backend, settings, s["proposers"], s["k_max"], path, prompts=prompts,
                             on_traced=lambda seq: advance(1 / max(len(prompts), 1)), trees=s.get("trees", ()))

    def profile(self, s: dict, path: Path, advance: Progress) -> dict:
        """Time target and draft forwards into the profile CSV `path` (what `fit-cost` reads)."""
        from specscope.study.profiling import profile_points

        total = profile_points(s["batch_sizes"], s["ks"], s["contexts"], s["proposers"])
        rows, _ = profile(self.backend, run_settings(s), s["proposers"], s["batch_sizes"], s["ks"], s["contexts"],
                       s["reps"], path, advance=lambda points: advance(points / total))
        return {"rows": len(rows)}
