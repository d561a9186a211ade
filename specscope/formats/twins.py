"""`twins.csv`: each measured cell's simulated twin — its own requests, batch size and policy, replayed.

Columns (`COLUMNS`): cell (the measured cell's folder name, its first repeat), k (the cell's fixed k;
empty for `--k adaptive`), then every column of `simulation.csv` (`specscope/formats/simulation.py`):
the twin is one simulation row whose trace holds exactly the cell's requests. Written by
`specscope/study/twins.py`; the report compares each twin's speedup with its cell's measured one.
"""

from __future__ import annotations

import csv
from pathlib import Path

from specscope.formats.files import atomic_open
from specscope.formats.simulation import COLUMNS as SIMULATION_COLUMNS
from specscope.formats.simulation import _cell

COLUMNS = ["cell", "k", *SIMULATION_COLUMNS]
REQUIRED = ("cell", "workload", "proposers", "policy", "batch_size", "speedup")


def write_twins(path: str | Path, rows: list[dict]) -> None:
    """The CSV, atomically; NaN and None become empty cells."""
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
