"""The measurement seam: a measured cell's requests run on a backend, and the study writes what it returns.

    backend.prepare(settings, prompts) -> optional: set-up before the clock starts (build the engine)
    backend.run(settings, prompts)   -> yields one request record per finished request
    backend.summary(wall_seconds)    -> what the backend measured of the run beyond its records
    backend.describe(settings)       -> the run's identity: model, method label, device, ...

The built-in engine is one backend (`engine_backend.EngineBackend`); an OpenAI-compatible server
measured over HTTP is another. `measure.measure` writes both the same way: `requests.jsonl` as
requests finish and `summary.json` at the end (`specscope/formats/requests.py`, `summary.py`).
"""

from __future__ import annotations

from typing import Iterator, Protocol

from specscope.settings import RunSettings
from specscope.workloads.prompt import Prompt


class MeasurementBackend(Protocol):
    """Where a measured cell's requests run."""

    def run(self, settings: RunSettings, prompts: list[Prompt]) -> Iterator[dict]:
        """Run the prompts under `settings`; yield each request's record (formats.requests) as it finishes."""
        ...

    def summary(self, wall_seconds: float) -> dict:
        """Summary fields of the run just done (formats.summary) that the backend alone knows."""
        ...

    def describe(self, settings: RunSettings) -> dict:
        """Identity fields of the run (model, method label, device, ...) for its summary."""
        ...
