"""The verdict: per workload and batch size, enable speculation, do not, or no measurable difference.

Measured: the SD cell with the highest speedup (any method, k, tree or `--k adaptive`) is compared with the
`none` cell of the same model, workload and batch size. Its gain (speedup - 1) is weighed against its
uncertainty:

- where the cells were repeated (`throughput_rel_spread` in their summaries: the relative standard
  deviation of throughput over the repeats), the uncertainty is 2 x sqrt(spread_SD^2 + spread_none^2);
- otherwise it comes from the requests both cells ran (matched by id): 2 standard errors of the mean log
  ratio of each request's speed (output tokens / latency) with and without SD. That is the spread over
  prompts, not over repeated runs: machine noise between the two runs is not in it, and the report says so.

A gain above its uncertainty is "enable", a loss beyond it "do not enable", anything within it "no measurable
difference". Simulated batch sizes that were not measured get the same three answers with the simulator's
model error (the mean absolute error of simulated against measured speedup, `metrics.fidelity`) as their
uncertainty. Pure functions: tables in, tables out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specscope.settings import BASELINE

ENABLE, DISABLE, NO_DIFFERENCE = "enable", "do not enable", "no measurable difference"
FROM_REPEATS, FROM_REQUESTS = "repeats", "requests"
KEY = ["model", "workload", "batch_size"]
Z = 2.0  # uncertainty = Z standard errors (about a 95% interval)


def decide(gain_pct: float, uncertainty_pct: float) -> str:
    """ENABLE, DISABLE or NO_DIFFERENCE for a gain and its uncertainty (both in percent; NaN uncertainty: by sign)."""
    if np.isnan(uncertainty_pct):
        uncertainty_pct = 0.0
    if gain_pct > uncertainty_pct:
        return ENABLE
    if gain_pct < -uncertainty_pct:
        return DISABLE
    return NO_DIFFERENCE


def request_speed_uncertainty(requests: pd.DataFrame, cell: str, base_cell: str) -> tuple[float, int]:
    """(relative uncertainty of cell's speedup over base_cell from their matched requests, requests matched).

    Z standard errors of the mean of log(speed_SD / speed_none) per request (speed = output tokens / latency_s),
    as a fraction; NaN with fewer than 2 matched requests.
    """
    def speeds(name):
        rows = requests[(requests["cell"] == name)].dropna(subset=["latency_s"])
        rows = rows[(rows["latency_s"] > 0) & (rows["output_len"] > 0)]
        return (rows["output_len"] / rows["latency_s"]).groupby(rows["id"]).mean()

    ratio = np.log(speeds(cell) / speeds(base_cell)).dropna()
    if len(ratio) < 2:
        return np.nan, len(ratio)
    se = float(ratio.std(ddof=1)) / np.sqrt(len(ratio))
    return float(np.expm1(Z * se)), len(ratio)


def measured_verdicts(runs: pd.DataFrame, requests: pd.DataFrame, latency_change: pd.DataFrame | None = None
                      ) -> pd.DataFrame:
    """One row per model, workload and batch size with a `none` cell and at least one SD cell.

    Columns: model, workload, batch_size, verdict, cell, label (the best SD cell), speedup, gain_pct,
    uncertainty_pct, uncertainty_from (FROM_REPEATS / FROM_REQUESTS / ""), matched (requests compared), and, when
    `latency_change` (latency.latency_change) is given, its `<metric>_base` / `<metric>_change_pct` columns for
    that cell.
    """
    columns = KEY + ["verdict", "cell", "label", "speedup", "gain_pct", "uncertainty_pct", "uncertainty_from",
                     "matched"]
    measured = runs.dropna(subset=["speedup"])
    sd = measured[measured["method"] != BASELINE]
    base = measured[measured["method"] == BASELINE]
    if sd.empty or base.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in sd.groupby(KEY):
        best = group.loc[group["speedup"].idxmax()]
        none = base[(base[KEY] == pd.Series(key, index=KEY)).all(axis=1)].iloc[0]
        gain = 100.0 * (best["speedup"] - 1.0)
        spreads = [best.get("throughput_rel_spread"), none.get("throughput_rel_spread")]
        if all(s is not None and not pd.isna(s) for s in spreads):
            uncertainty, source, matched = Z * float(np.hypot(*spreads)), FROM_REPEATS, 0
        elif not requests.empty and "latency_s" in requests:
            uncertainty, matched = request_speed_uncertainty(requests, best["cell"], none["cell"])
            source = FROM_REQUESTS if not np.isnan(uncertainty) else ""
        else:
            uncertainty, source, matched = np.nan, "", 0
        uncertainty_pct = 100.0 * uncertainty * best["speedup"] if not np.isnan(uncertainty) else np.nan
        rows.append({**dict(zip(KEY, key)), "verdict": decide(gain, uncertainty_pct), "cell": best["cell"],
                     "label": best["label"], "speedup": float(best["speedup"]), "gain_pct": gain,
                     "uncertainty_pct": uncertainty_pct, "uncertainty_from": source, "matched": matched})
    table = pd.DataFrame(rows, columns=columns).sort_values(KEY).reset_index(drop=True)
    if latency_change is not None and not latency_change.empty:
        table = table.merge(latency_change, on="cell", how="left")
    return table


def simulated_verdicts(simulation: pd.DataFrame | None, measured_batches: dict[str, set[int]],
                       model_error_pct: dict[str, float]) -> pd.DataFrame:
    """Per workload, simulator mode and batch size that no measured cell covers: the deployable policy (fixed k
    or adaptive) with the best simulated speedup and its verdict within the model error of that workload
    (`model_error_pct[workload]`, else the mean over workloads, else NaN).

    Columns: workload, mode, batch_size, verdict, policy, speedup, gain_pct, uncertainty_pct.
    """
    columns = ["workload", "mode", "batch_size", "verdict", "policy", "speedup", "gain_pct", "uncertainty_pct"]
    if simulation is None:
        return pd.DataFrame(columns=columns)
    rows = simulation[simulation["policy_kind"].isin(["fixed", "adaptive"])].dropna(subset=["speedup"])
    rows = rows[[b not in measured_batches.get(w, set()) for w, b in zip(rows["workload"], rows["batch_size"])]]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    keys = ["workload", "mode", "batch_size"]
    best = rows.loc[rows.groupby(keys)["speedup"].idxmax()].copy()
    overall = float(np.mean(list(model_error_pct.values()))) if model_error_pct else np.nan
    best["policy"] = best["policy"] + " " + best["proposers"]
    best["gain_pct"] = 100.0 * (best["speedup"] - 1.0)
    best["uncertainty_pct"] = [model_error_pct.get(w, overall) * s for w, s in zip(best["workload"], best["speedup"])]
    best["verdict"] = [decide(g, u) for g, u in zip(best["gain_pct"], best["uncertainty_pct"])]
    return best.sort_values(keys)[columns].reset_index(drop=True)
