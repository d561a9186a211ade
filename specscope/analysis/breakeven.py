"""Why speculation pays or not: the measured step-time curve and the acceptance length each k needs to break even.

From `profile.csv` (`specscope profile`), per batch size B and draft length k (medians over the profiled
contexts):

    plain step  P    = T_target(B, k=0) + O(B)
    SD step     S(k) = T_target(B, k) + T_draft(B, k) + O(B)      (T_draft = 0 for verify alone)

T_target(B, k) is the target forward over k + 1 tokens per sequence (`decode` / `verify` rows), T_draft the
proposer's `draft:<name>` rows and O(B) the per-step host time (`sample` + `overhead` rows). A step that
commits L tokens per sequence on average (the acceptance length) takes S(k) / L per token against P for plain
decoding, so it pays exactly when L > S(k) / P: the break-even acceptance length, which is also the step's
cost relative to a plain step. Measured acceptance lengths (runs/<cell>/summary.json `mean_acc_len`) are set
against it. Pure functions: tables in, tables out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from specscope.settings import BASELINE

TARGET_KINDS = ("decode", "verify", "target")
VERIFY_ONLY = "verify only"  # the curve without any draft cost (a free proposer)


def step_costs(profile: pd.DataFrame | None) -> pd.DataFrame:
    """Break-even acceptance length per batch size, k and proposer (VERIFY_ONLY included).

    Columns: batch_size, k, proposer, target_s (T_target(B, k)), draft_s, host_s (O(B)), plain_s (P), step_s
    (S(k)), break_even (S(k) / P). Empty when the profile lacks batch_size and k columns (a hand-made CSV) or
    plain (k = 0) target rows.
    """
    columns = ["batch_size", "k", "proposer", "target_s", "draft_s", "host_s", "plain_s", "step_s", "break_even"]
    if profile is None or not {"batch_size", "k", "step_kind", "seconds"} <= set(profile.columns):
        return pd.DataFrame(columns=columns)
    prof = profile.assign(seconds=pd.to_numeric(profile["seconds"], errors="coerce")).dropna(subset=["seconds"])
    target = _median_over_contexts(prof[prof["step_kind"].isin(TARGET_KINDS)])
    host = (prof[prof["step_kind"].isin(["sample", "overhead"])]
            .groupby(["batch_size", "step_kind"])["seconds"].median().groupby("batch_size").sum())
    rows = []
    for batch, by_k in target.groupby("batch_size"):
        if 0 not in set(by_k["k"]):
            continue
        o = float(host.get(batch, 0.0))
        plain = float(by_k.loc[by_k["k"] == 0, "seconds"].iloc[0]) + o
        drafts = {VERIFY_ONLY: pd.Series(0.0, index=by_k["k"])}
        for kind in sorted(k for k in prof["step_kind"].unique() if str(k).startswith("draft:")):
            own = _median_over_contexts(prof[(prof["step_kind"] == kind) & (prof["batch_size"] == batch)])
            drafts[kind.split(":", 1)[1]] = own.set_index("k")["seconds"]
        for proposer, draft in drafts.items():
            for _, row in by_k.iterrows():
                k = int(row["k"])
                draft_s = 0.0 if k == 0 else draft.get(k, np.nan)
                step = row["seconds"] + draft_s + o
                rows.append({"batch_size": int(batch), "k": k, "proposer": proposer, "target_s": row["seconds"],
                             "draft_s": draft_s, "host_s": o, "plain_s": plain, "step_s": step,
                             "break_even": step / plain})
    table = pd.DataFrame(rows, columns=columns).dropna(subset=["break_even"])
    return table.sort_values(["batch_size", "proposer", "k"]).reset_index(drop=True)


def _median_over_contexts(rows: pd.DataFrame) -> pd.DataFrame:
    """Median seconds per batch size and k (over contexts and repeated rows)."""
    rows = rows.assign(batch_size=pd.to_numeric(rows["batch_size"], errors="coerce"),
                       k=pd.to_numeric(rows["k"], errors="coerce")).dropna(subset=["batch_size", "k"])
    return rows.groupby(["batch_size", "k"])["seconds"].median().reset_index()


def measured_acceptance(runs: pd.DataFrame) -> pd.DataFrame:
    """Fixed-k SD cells' mean acceptance length and speedup: workload, method, k, batch_size, mean_acc_len, speedup."""
    cells = runs[(runs["method"] != BASELINE) & (pd.to_numeric(runs["k"], errors="coerce") > 0)].copy()
    cells["mean_acc_len"] = pd.to_numeric(cells["mean_acc_len"], errors="coerce")
    cells = cells.dropna(subset=["mean_acc_len"])
    keep = ["workload", "method", "k", "batch_size", "mean_acc_len"] + (["speedup"] if "speedup" in cells else [])
    return cells[keep].reset_index(drop=True)


def break_even_at(costs: pd.DataFrame, batch_size: int, k: int, proposer: str) -> float:
    """The break-even acceptance length for one proposer at (batch size, k); NaN where not profiled."""
    row = costs[(costs["batch_size"] == batch_size) & (costs["k"] == k) & (costs["proposer"] == proposer)]
    return float(row["break_even"].iloc[0]) if len(row) else np.nan


PAYS, DOES_NOT_PAY, SOME = "pays", "does not pay", "pays on some workloads"


def summary(costs: pd.DataFrame, acceptance: pd.DataFrame) -> pd.DataFrame:
    """Per profiled batch size, measured method and k: a step's cost relative to a plain step (verify alone, and with
    the method's drafting: the break-even acceptance length), the measured acceptance lengths (over workloads) and
    whether they clear it.

    Columns: batch_size, method, k, verify_cost, break_even (NaN where the method's drafting was not profiled),
    acc_low, acc_high, pays (PAYS / DOES_NOT_PAY / SOME / "").
    """
    rows = []
    for (batch, method, k), cells in acceptance.groupby(["batch_size", "method", "k"]):
        verify = break_even_at(costs, int(batch), int(k), VERIFY_ONLY)
        if np.isnan(verify):
            continue
        need = break_even_at(costs, int(batch), int(k), method)
        low, high = float(cells["mean_acc_len"].min()), float(cells["mean_acc_len"].max())
        pays = "" if np.isnan(need) else PAYS if low > need else DOES_NOT_PAY if high < need else SOME
        rows.append({"batch_size": int(batch), "method": method, "k": int(k), "verify_cost": verify,
                     "break_even": need, "acc_low": low, "acc_high": high, "pays": pays})
    return pd.DataFrame(rows, columns=["batch_size", "method", "k", "verify_cost", "break_even", "acc_low", "acc_high",
                                       "pays"])
