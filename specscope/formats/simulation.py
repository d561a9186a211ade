"""`simulation.csv`: one row per (trace, proposer set, policy, batch size) that `specscope simulate` replayed.

Columns (`COLUMNS`, in file order, then those of `WHEN_PRESENT` that some row has):
    trace, workload, proposers ("ngram" or "ngram,draft"), policy (fixed-K, oracle, adaptive, ...),
    batch_size, mode (serve | paper), cost_model,
    speedup (SD throughput / plain throughput), sd_throughput, ar_throughput (tokens/s),
    mean_acc_len, acceptance_rate, verify_share, draft_share, overhead_share, wasted_verify_share,
    sd_time_s, ar_time_s, sd_mean_latency_s, ar_mean_latency_s,
    requests (simulated), generated_tokens, ngram_match_prob, seed, gap_recovered,
    distinct_requests (the trace's requests the row rests on: serve mode simulates a batch size larger than
    the trace with `requests` resampled from these, `specscope/simulator/resample.py`)
    lower_bound          True: the row replayed a censored trace (a server's) and depended on a censored
                         value, so the speedup is a lower bound (`simulator/grid.py`); written only when a
                         row replayed a censored trace, so files of uncensored traces keep their columns
Empty cells stand for None / NaN. Readers need `REQUIRED` and take the rest where present.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from specscope.formats.files import atomic_open

COLUMNS = [
    "trace", "workload", "proposers", "policy", "batch_size", "mode", "cost_model",
    "speedup", "sd_throughput", "ar_throughput", "mean_acc_len", "acceptance_rate",
    "verify_share", "draft_share", "overhead_share", "wasted_verify_share",
    "sd_time_s", "ar_time_s", "sd_mean_latency_s", "ar_mean_latency_s",
    "requests", "generated_tokens", "ngram_match_prob", "seed", "gap_recovered", "distinct_requests",
]
WHEN_PRESENT = ["lower_bound"]  # after COLUMNS, written only when some row has a value
REQUIRED = ("trace", "proposers", "policy", "batch_size", "speedup")


def write_simulation(path: str | Path, rows: list[dict]) -> None:
    """The CSV, atomically; columns not in COLUMNS are left out, NaN and None become empty cells."""
    columns = COLUMNS + [c for c in WHEN_PRESENT if any(row.get(c) is not None for row in rows)]
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value
