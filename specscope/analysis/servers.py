"""Server cells (`specscope bench`) as tables: one row per cell, speedup against its baseline, simulated bounds.

    servers = load_server_cells(Path("out/runs"))      # cells whose summary.json says "command": "bench"
    table = with_server_speedup(servers)               # + ar_throughput_tok_s and speedup per load level
    bounds = server_simulation(simulation, traces)     # simulation rows of the traces bench wrote

A server cell is kept apart from the engine's cells (`loaders.load_runs` skips it): its throughput
includes HTTP and the server's own scheduling, and its baseline is a server without SD at the same
load level (`role` "baseline", `specscope bench --baseline-endpoint`), not the engine's `none` cell.
Latencies are milliseconds (`ttft_p50`, `itl_p99`, ...), as `study/bench.py` writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from specscope.formats.files import read_json_object
from specscope.formats.summary import FIX
from specscope.formats.trace import Trace

LATENCIES = ("ttft", "itl", "tpot", "e2e")
STATS = ("mean", "p50", "p90", "p99")
SERVER_COLUMNS = [
    "cell", "model", "workload", "label", "role", "proposer", "k", "engine", "engine_version", "endpoint", "api",
    "stream", "concurrency", "request_rate", "level", "partial", "num_requests", "num_errors", "generated_tokens",
    "wall_seconds", "throughput_tok_s", "request_throughput_rps", "goodput_rps", "mean_acc_len", "acceptance_rate",
    "sd_source", "acceptance_by_position", "notes",
    *(f"{name}_{stat}" for name in LATENCIES for stat in STATS),
]


def is_server_cell(summary: dict) -> bool:
    return summary.get("command") == "bench"


def load_server_cells(runs_dir: Path) -> pd.DataFrame:
    """Every bench cell under `runs_dir` (cells without summary.json are the loaders' to note)."""
    rows = []
    if runs_dir.is_dir():
        for cell in sorted(p for p in runs_dir.iterdir() if (p / "summary.json").is_file()):
            summary = read_json_object(cell / "summary.json", "summary file", hint=FIX)
            if is_server_cell(summary):
                rows.append(server_row(cell.name, summary))
    return pd.DataFrame(rows, columns=SERVER_COLUMNS)


def server_row(cell: str, s: dict) -> dict:
    row = {"cell": cell, "model": str(s.get("model", "")), "workload": str(s.get("workload", "")),
           "label": str(s.get("label") or s.get("method") or cell), "role": s.get("role") or "sd",
           "throughput_tok_s": s.get("output_throughput_tok_s", s.get("throughput_tok_s")),
           "partial": bool(s.get("partial", False))}
    for key in SERVER_COLUMNS:
        if key not in row and not any(key.startswith(f"{n}_") for n in LATENCIES):
            row[key] = s.get(key)
    for name in LATENCIES:
        stats = s.get(f"{name}_ms") if isinstance(s.get(f"{name}_ms"), dict) else {}
        for stat in STATS:
            row[f"{name}_{stat}"] = stats.get(stat)
    return row


def with_server_speedup(servers: pd.DataFrame) -> pd.DataFrame:
    """SD cells with `ar_throughput_tok_s` (their baseline's at the same model, workload and level) and `speedup`."""
    out = servers.copy()
    base = servers[servers["role"] == "baseline"].groupby(["model", "workload", "level"])["throughput_tok_s"]
    base = base.mean().rename("ar_throughput_tok_s").reset_index()
    out = out.merge(base, on=["model", "workload", "level"], how="left")
    out["speedup"] = np.where(out["role"] == "sd", out["throughput_tok_s"] / out["ar_throughput_tok_s"], np.nan)
    return out


def closed_loop_cells(servers: pd.DataFrame) -> pd.DataFrame:
    """The cells measured at a fixed concurrency (not a request rate), concurrency as int."""
    return servers[servers["concurrency"].notna()].assign(concurrency=lambda t: t["concurrency"].astype(int))


def server_traces(traces: list[Trace]) -> list[Trace]:
    """The traces `specscope bench` made from servers' per-step arrays."""
    return [t for t in traces if t.extra.get("source") == "specscope bench"]


def server_simulation(simulation: pd.DataFrame | None, traces: list[Trace]) -> pd.DataFrame | None:
    """Simulation rows of the server traces, with `bound` ("at least" where the row is a lower bound)."""
    names = {t.name for t in server_traces(traces)}
    if simulation is None or not names:
        return None
    rows = simulation[simulation["trace"].isin(names)].copy()
    if rows.empty:
        return None
    lower = rows["lower_bound"] if "lower_bound" in rows.columns else pd.Series(False, index=rows.index)
    rows["is_lower_bound"] = lower.map(lambda v: str(v).strip().lower() in ("true", "1"))
    return rows

