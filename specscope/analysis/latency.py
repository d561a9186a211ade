"""Latency tables: time to first token, per-token latency and end-to-end latency, measured and simulated.

Measured, per request (`requests.jsonl`): `ttft_s` (admission to the first output token: the prefill step),
`latency_s` (admission to the last token) and the output length; per-token latency = (latency_s - ttft_s) /
(output tokens - 1), the time between output tokens once the first has come (what a streaming user feels).
A folder written before `ttft_s` existed has no TTFT; its per-token latency is then latency_s / output tokens
(the prefill included) and the tables say so. Percentiles are over a cell's requests.

Simulated (`simulation.csv`): the mean request completion time with and without speculation
(`ar_mean_latency_s`, `sd_mean_latency_s`), for the best deployable policy of each workload and batch size.
Pure functions: tables in, tables out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specscope.settings import BASELINE

QUANTILES = (0.5, 0.9)
CELL_KEY = ["cell", "model", "workload", "method", "k", "label", "batch_size", "tree"]
LATENCY_COLUMNS = ["ttft_s", "per_token_s", "latency_s"]


def per_request(requests: pd.DataFrame) -> pd.DataFrame:
    """`requests` plus `per_token_s` (see the module docstring) and `per_token_from` ("ttft" or "end-to-end")."""
    out = requests.copy()
    tokens = pd.to_numeric(out["output_len"], errors="coerce")
    latency = pd.to_numeric(out.get("latency_s"), errors="coerce")
    ttft = pd.to_numeric(out.get("ttft_s"), errors="coerce")
    with np.errstate(divide="ignore", invalid="ignore"):
        streaming = (latency - ttft) / (tokens - 1).where(tokens > 1)
        whole = latency / tokens.where(tokens > 0)
    out["per_token_s"] = streaming.where(ttft.notna(), whole)
    out["per_token_from"] = np.where(ttft.notna(), "ttft", "end-to-end")
    return out


def cell_latency(requests: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per measured cell with latency data: p50 and p90 of TTFT, per-token and end-to-end latency.

    Columns: CELL_KEY, requests, throughput_tok_s, `<metric>_p50` / `<metric>_p90` for metric in LATENCY_COLUMNS,
    has_ttft (every request recorded its TTFT).
    """
    columns = CELL_KEY + ["requests", "throughput_tok_s", "has_ttft"] + [
        f"{m}_p{int(q * 100)}" for m in LATENCY_COLUMNS for q in QUANTILES]
    if requests.empty or "latency_s" not in requests or requests["latency_s"].isna().all():
        return pd.DataFrame(columns=columns)
    table = per_request(requests.dropna(subset=["latency_s"]))
    rows = []
    for cell, group in table.groupby("cell", sort=False):
        row = {"cell": cell, "requests": len(group), "has_ttft": bool(group["ttft_s"].notna().all())}
        for metric in LATENCY_COLUMNS:
            values = pd.to_numeric(group[metric], errors="coerce").dropna()
            for q in QUANTILES:
                row[f"{metric}_p{int(q * 100)}"] = float(values.quantile(q)) if len(values) else np.nan
        rows.append(row)
    stats = pd.DataFrame(rows)
    cells = runs[[c for c in CELL_KEY if c in runs] + ["throughput_tok_s"]]
    merged = cells.merge(stats, on="cell", how="inner")
    return merged.sort_values(["workload", "batch_size", "label"], key=_method_order).reset_index(drop=True)[columns]


def latency_change(latency: pd.DataFrame) -> pd.DataFrame:
    """Each SD cell's p50 latencies against the `none` cell of the same model, workload and batch size.

    Columns: cell, `<metric>_base` (none's p50) and `<metric>_change_pct` (100 * (SD - none) / none; negative =
    faster) for metric in LATENCY_COLUMNS.
    """
    key = ["model", "workload", "batch_size"]
    base = latency[latency["method"] == BASELINE].groupby(key)[[f"{m}_p50" for m in LATENCY_COLUMNS]].mean()
    base.columns = [f"{m}_base" for m in LATENCY_COLUMNS]
    merged = latency.merge(base.reset_index(), on=key, how="left")
    for metric in LATENCY_COLUMNS:
        merged[f"{metric}_change_pct"] = 100.0 * (merged[f"{metric}_p50"] - merged[f"{metric}_base"]) / merged[f"{metric}_base"]
    return merged[["cell"] + [f"{m}_base" for m in LATENCY_COLUMNS] + [f"{m}_change_pct" for m in LATENCY_COLUMNS]]


def simulated_latency(simulation: pd.DataFrame | None) -> pd.DataFrame:
    """Per workload, simulator mode and batch size: the deployable policy (fixed k or adaptive) with the best simulated
    speedup, its mean request latency and plain decoding's. Empty without latency columns.

    Columns: workload, mode, batch_size, policy (e.g. `fixed-3 ngram`), speedup, ar_latency_s, sd_latency_s,
    change_pct (100 * (SD - plain) / plain).
    """
    columns = ["workload", "mode", "batch_size", "policy", "speedup", "ar_latency_s", "sd_latency_s", "change_pct"]
    if simulation is None or not {"sd_mean_latency_s", "ar_mean_latency_s"} <= set(simulation.columns):
        return pd.DataFrame(columns=columns)
    rows = simulation[simulation["policy_kind"].isin(["fixed", "adaptive"])].copy()
    rows["sd_latency_s"] = pd.to_numeric(rows["sd_mean_latency_s"], errors="coerce")
    rows["ar_latency_s"] = pd.to_numeric(rows["ar_mean_latency_s"], errors="coerce")
    rows = rows.dropna(subset=["speedup", "sd_latency_s", "ar_latency_s"])
    if rows.empty:
        return pd.DataFrame(columns=columns)
    keys = ["workload", "mode", "batch_size"]
    best = rows.loc[rows.groupby(keys)["speedup"].idxmax()].copy()
    best["policy"] = best["policy"] + " " + best["proposers"]
    best["change_pct"] = 100.0 * (best["sd_latency_s"] - best["ar_latency_s"]) / best["ar_latency_s"]
    return best.sort_values(keys)[columns].reset_index(drop=True)


def _method_order(column: pd.Series) -> pd.Series:
    """Sort key: `none` first among labels; other columns as they are."""
    if column.name == "label":
        return column.map(lambda label: ("0" if label == BASELINE else "1") + str(label))
    return column
