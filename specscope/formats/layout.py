"""The study folder: what `specscope sweep` / `demo` write, what `specscope report DIR` reads, in one place.

```
DIR/
  runs/<cell>/requests.jsonl   one measured cell (`formats/requests.py`); `specscope run -o DIR/runs/<cell>`
  runs/<cell>/summary.json     its summary (`formats/summary.py`)
  runs/<cell>/cell.json        the settings a sweep ran it with (resume: same settings = done)
  traces/<workload>.jsonl      per-position acceptance traces (`formats/trace.py`)
  profile.csv                  step timings (`formats/profile.py`)
  cost_model.toml              the cost model fitted from them (`formats/cost_model.py`)
  simulation.csv               replayed traces (`formats/simulation.py`)
  simulation_cost_model.toml   the cost model the simulation used when it is not the fitted one (a preset,
                               a file, an analytic model), as the sweep copies it
  report.html                  the report
  sweep/                       a sweep's own state: config.toml, done/<step>.json stamps, tmp/, lock
```

Every part is optional: a folder holding only `traces/` is a study too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUNS_DIR = "runs"
TRACES_DIR = "traces"
REQUESTS_JSONL = "requests.jsonl"
SUMMARY_JSON = "summary.json"
CELL_SETTINGS = "cell.json"
PROFILE_CSV = "profile.csv"
COST_MODEL_TOML = "cost_model.toml"
SIMULATION_CSV = "simulation.csv"
SIMULATION_COST_MODEL_TOML = "simulation_cost_model.toml"
REPORT_HTML = "report.html"
STATE_DIR = "sweep"


@dataclass(frozen=True)
class StudyFolder:
    """The paths of one study folder."""

    root: Path

    @property
    def runs(self) -> Path:
        return self.root / RUNS_DIR

    def cell(self, name: str) -> Path:
        return self.runs / name

    @property
    def traces(self) -> Path:
        return self.root / TRACES_DIR

    def trace(self, label: str) -> Path:
        return self.traces / f"{label}.jsonl"

    @property
    def profile(self) -> Path:
        return self.root / PROFILE_CSV

    @property
    def cost_model(self) -> Path:
        return self.root / COST_MODEL_TOML

    @property
    def simulation(self) -> Path:
        return self.root / SIMULATION_CSV

    @property
    def simulation_cost_model(self) -> Path:
        return self.root / SIMULATION_COST_MODEL_TOML

    @property
    def report(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR
