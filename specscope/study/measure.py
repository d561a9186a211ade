"""Measure one cell: run a run's prompts on a backend, write `requests.jsonl` as they finish and `summary.json`.

    summary = measure(EngineBackend(settings), settings, prompts, Path("out/ngram"))

Shared by `specscope run`, a sweep's cells and `specscope bench` (a server backend), so every cell's
files have one writer (`specscope/formats/requests.py`, `summary.py`). Ctrl-C: with `keep_partial`
the finished requests are kept and the summary says `"partial": true`; without it the
KeyboardInterrupt propagates (a sweep discards the unfinished cell).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from specscope.formats import requests as request_format
from specscope.formats.files import atomic_open
from specscope.formats.layout import REQUESTS_JSONL, SUMMARY_JSON
from specscope.formats.summary import write_summary
from specscope.settings import RunSettings
from specscope.study.backend import MeasurementBackend
from specscope.workloads.prompt import Prompt

OnRequest = Callable[[dict, int, float], None]  # (record, output tokens so far, seconds so far)


def measure(backend: MeasurementBackend, settings: RunSettings, prompts: list[Prompt], output: Path,
            on_request: OnRequest | None = None, keep_partial: bool = True,
            summary_extra: Callable[[], dict] | None = None, command: str = "run") -> dict:
    """Run the cell into `output`; returns its summary. `summary_extra()` adds fields just before it is written."""
    records, partial, made = [], False, 0
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with atomic_open(output / REQUESTS_JSONL) as fh:
        try:
            for record in backend.run(settings, prompts):
                fh.write(request_format.record_line(record))
                records.append(record)
                made += record.get("num_output_tokens", 0) if not record.get("error") else 0
                if on_request is not None:
                    on_request(record, made, time.perf_counter() - start)
        except KeyboardInterrupt:
            if not keep_partial:
                raise
            partial = True
    wall = time.perf_counter() - start
    summary = {**request_format.totals(records, wall), **backend.summary(wall), "command": command,
               "partial": partial, **backend.describe(settings), **_settings_fields(settings, prompts),
               "output_dir": str(output)}
    if summary_extra is not None:
        summary.update(summary_extra())
    write_summary(output / SUMMARY_JSON, summary)
    return summary


def _settings_fields(settings: RunSettings, prompts: list[Prompt]) -> dict:
    """The summary's settings fields (formats/summary.py)."""
    return {
        "method": settings.proposer.method,
        "adaptive": settings.adaptive is not None,
        "batch_size": settings.batch_size,
        "workload": prompts[0].workload if prompts else settings.workload,
        "source": prompts[0].source if prompts else settings.source,
        "num_prompts": len(prompts),
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "seed": settings.seed,
    }
