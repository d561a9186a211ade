"""The study's numbers: tables computed from a loaded study, one function per metric.

Words as in the glossary of docs/design.md. Measured speedup is a cell's throughput over the throughput of
the `none` cell with the same model, workload and batch size. Trace-based metrics use the
per-position acceptance trace (acc_len[i] with lookahead k_max). Every function is pure: tables
in, tables out; nothing here draws or writes.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from specscope.analysis.loaders import proposer_names, trace_workload
from specscope.formats.summary import PHASES
from specscope.settings import BASELINE
from specscope.formats.trace import Trace

# Cells compared against each other share these settings.
BASELINE_KEY = ["model", "workload", "batch_size"]
# BLEU-4 bin edges for the n-gram-vs-other figure (the study's threshold was about 0.6).
BLEU_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


# ---------------------------------------------------------------------------------------------
# Measured runs


def with_speedup(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` plus `ar_throughput` (the matching `none` cell's) and `speedup`; NaN where no baseline."""
    out = runs.copy()
    base = runs[runs["method"] == BASELINE].groupby(BASELINE_KEY)["throughput_tok_s"].mean()
    base = base.rename("ar_throughput").reset_index()
    out = out.drop(columns=["ar_throughput"], errors="ignore").merge(base, on=BASELINE_KEY, how="left")
    out["speedup"] = out["throughput_tok_s"] / out["ar_throughput"]
    return out


def time_per_token(runs: pd.DataFrame) -> pd.DataFrame:
    """Milliseconds per generated token spent in each phase, per cell (columns `ms_<phase>`)."""
    out = runs.copy()
    tokens = pd.to_numeric(out["generated_tokens"], errors="coerce").replace(0, np.nan)
    for phase in PHASES:
        out[f"ms_{phase}"] = 1000.0 * pd.to_numeric(out[f"t_{phase}"], errors="coerce") / tokens
    return out


def memory_overhead(runs: pd.DataFrame) -> pd.DataFrame:
    """Peak RSS of each cell against its `none` cell: `extra_mb` and `extra_pct`."""
    out = runs.copy()
    out["peak_rss_mb"] = pd.to_numeric(out["peak_rss_mb"], errors="coerce")
    base = out[out["method"] == BASELINE].groupby(BASELINE_KEY)["peak_rss_mb"].mean()
    out = out.merge(base.rename("base_rss_mb").reset_index(), on=BASELINE_KEY, how="left")
    out["extra_mb"] = out["peak_rss_mb"] - out["base_rss_mb"]
    out["extra_pct"] = 100.0 * out["extra_mb"] / out["base_rss_mb"]
    return out


# ---------------------------------------------------------------------------------------------
# Per-position acceptance traces


def acc_len_matrix(trace: Trace, proposer: str, max_positions: int | None = None) -> np.ndarray:
    """[requests, positions] acc_len, requests sorted longest first, NaN past each request's end."""
    rows = sorted((r.acc_len[proposer] for r in trace.requests), key=len, reverse=True)
    width = max(len(a) for a in rows)
    if max_positions is not None:
        width = min(width, max_positions)
    matrix = np.full((len(rows), width), np.nan)
    for i, arr in enumerate(rows):
        n = min(len(arr), width)
        matrix[i, :n] = arr[:n]
    return matrix


def length_groups(lengths: np.ndarray, n_groups: int = 3) -> list[tuple[int, int]]:
    """Up to `n_groups` output-length ranges [lo, hi] splitting the requests into equal counts."""
    lengths = np.sort(np.asarray(lengths))
    chunks = [c for c in np.array_split(lengths, min(n_groups, len(lengths))) if len(c)]
    groups: list[tuple[int, int]] = []
    for chunk in chunks:
        lo, hi = int(chunk[0]), int(chunk[-1])
        if groups and lo <= groups[-1][1]:  # ties across a split: merge into the previous group
            groups[-1] = (groups[-1][0], max(hi, groups[-1][1]))
        else:
            groups.append((lo, hi))
    return groups


# Per-position means are drawn only where at least this share of the requests (and 3) reach the
# position: past it a mean rests on a handful of requests and is noise.
MIN_SHARE_AT_POSITION = 0.2


def _enough(requests: np.ndarray, total: int) -> np.ndarray:
    return requests >= max(min(3, total), MIN_SHARE_AT_POSITION * total)


def mean_acc_by_position(trace: Trace, proposer: str, n_groups: int = 3) -> pd.DataFrame:
    """Mean acc_len at each output position, per output-length group.

    Columns: group (e.g. `64-127 tokens (20 req.)`), position, mean_acc_len, requests (how many
    reach it). Positions reached by fewer than MIN_SHARE_AT_POSITION of the group are left out.
    """
    lengths = np.array([len(r.acc_len[proposer]) for r in trace.requests])
    frames = []
    for lo, hi in length_groups(lengths, n_groups):
        members = [r.acc_len[proposer] for r in trace.requests if lo <= len(r.acc_len[proposer]) <= hi]
        width = max(len(a) for a in members)
        stacked = np.full((len(members), width), np.nan)
        for i, arr in enumerate(members):
            stacked[i, : len(arr)] = arr
        reached = np.sum(~np.isnan(stacked), axis=0)
        keep = _enough(reached, len(members))
        frames.append(pd.DataFrame({
            "group": f"{lo}-{hi} tokens ({len(members)} req.)",
            "position": np.arange(width)[keep],
            "mean_acc_len": np.nanmean(stacked, axis=0)[keep],
            "requests": reached[keep],
        }))
    return pd.concat(frames, ignore_index=True)


def oracle_tokens_per_step(acc: np.ndarray) -> float:
    """Tokens committed per step when each step proposes exactly acc_len - 1 drafts (oracle policy).

    Walks the trace from position 0 (the prefill token, acc_len 1): a step at position i commits
    acc_len[i] tokens and the next step starts there.
    """
    n = len(acc)
    if n == 0:
        return float("nan")
    pos = steps = 0
    while pos < n:
        pos += int(acc[pos])
        steps += 1
    return n / steps


def trace_requests(traces: list[Trace]) -> pd.DataFrame:
    """One row per (trace, request, proposer): output length, mean acc_len, oracle tokens/step, BLEU-4.

    `mean_acc_len` is the mean over the request's output positions of acc_len (k_max lookahead);
    `bleu4` is `token_bleu4(prompt, output)` over token ids.
    """
    rows = []
    for trace in traces:
        workload = trace_workload(trace)
        for req in trace.requests:
            bleu = token_bleu4(req.prompt_token_ids, req.output_token_ids)
            for proposer in trace.proposers:
                acc = req.acc_len[proposer]
                rows.append({
                    "trace": trace.name, "workload": req.workload or workload, "proposer": proposer,
                    "id": req.id, "output_len": len(acc),
                    "mean_acc_len": float(np.mean(acc)) if len(acc) else np.nan,
                    "oracle_tokens_per_step": oracle_tokens_per_step(acc), "bleu4": bleu,
                })
    return pd.DataFrame(rows, columns=[
        "trace", "workload", "proposer", "id", "output_len", "mean_acc_len", "oracle_tokens_per_step", "bleu4",
    ])


def is_ngram(proposer: str) -> bool:
    """Whether a proposer name is the n-gram (prompt lookup) proposer."""
    return proposer.lower().replace("-", "").replace("_", "") in ("ngram", "promptlookup")


def proposer_pair(proposers: list[str]) -> tuple[str, str] | None:
    """Two proposers to compare, n-gram first when present; None with fewer than two."""
    if len(proposers) < 2:
        return None
    ordered = sorted(proposers, key=lambda p: (not is_ngram(p), proposers.index(p)))
    return ordered[0], ordered[1]


def position_difference(trace: Trace, a: str, b: str) -> pd.DataFrame:
    """Per output position: mean of acc_len[a] - acc_len[b] over requests, and the share where a wins.

    Positions reached by fewer than MIN_SHARE_AT_POSITION of the requests are left out.
    """
    width = max(min(len(r.acc_len[a]), len(r.acc_len[b])) for r in trace.requests)
    diff = np.full((len(trace.requests), width), np.nan)
    for i, req in enumerate(trace.requests):
        n = min(len(req.acc_len[a]), len(req.acc_len[b]))
        diff[i, :n] = req.acc_len[a][:n] - req.acc_len[b][:n]
    reached = (~np.isnan(diff)).sum(axis=0)
    keep = _enough(reached, len(trace.requests))
    diff = diff[:, keep]
    return pd.DataFrame({
        "position": np.arange(width)[keep],
        "mean_diff": np.nanmean(diff, axis=0),
        "a_wins": np.sum(diff > 0, axis=0) / reached[keep],
        "b_wins": np.sum(diff < 0, axis=0) / reached[keep],
        "requests": reached[keep],
    })


def bleu_bins(requests: pd.DataFrame, ngram: str, other: str, edges=BLEU_EDGES) -> pd.DataFrame:
    """n-gram's throughput relative to `other`, per BLEU-4 prompt-output overlap bin.

    Per request, `ratio` = n-gram's oracle tokens per step / the other proposer's: the speedup of
    n-gram relative to the other under the oracle policy when a step costs the same whichever
    proposer drafted (a proxy from traces; it ignores draft cost, which favours the other proposer).
    Returns (per_request, per_bin): per_bin has bin, lo, hi, requests, mean_ratio, median_ratio,
    ngram_wins (share of requests with ratio > 1).
    """
    keyed = requests.set_index(["trace", "id", "proposer"])["oracle_tokens_per_step"].unstack("proposer")
    bleu = requests.drop_duplicates(["trace", "id"]).set_index(["trace", "id"])["bleu4"]
    per_request = pd.DataFrame({"bleu4": bleu, "ratio": keyed[ngram] / keyed[other]}).dropna().reset_index()
    labels = [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(edges[:-1], edges[1:])]
    per_request["bin"] = pd.cut(per_request["bleu4"], bins=list(edges), labels=labels, include_lowest=True)
    grouped = per_request.groupby("bin", observed=False)["ratio"]
    per_bin = pd.DataFrame({
        "bin": labels, "lo": edges[:-1], "hi": edges[1:],
        "requests": grouped.size().reindex(labels).to_numpy(),
        "mean_ratio": grouped.mean().reindex(labels).to_numpy(),
        "median_ratio": grouped.median().reindex(labels).to_numpy(),
        "ngram_wins": grouped.apply(lambda r: float((r > 1).mean()) if len(r) else np.nan).reindex(labels).to_numpy(),
    })
    return per_request, per_bin


def token_bleu4(reference: list[int], hypothesis: list[int]) -> float:
    """BLEU-4 in [0, 1] of `hypothesis` against `reference`, over token ids.

    The same definition as `specscope.workloads.overlap` (sacrebleu's sentence BLEU: clipped n-gram
    precisions for n = 1..4 with effective order, `exp` smoothing of zero counts, brevity penalty,
    0 when no token is shared),
    applied to token ids, so it needs no text and works on imported traces too.
    """
    if not reference or not hypothesis:
        return 0.0
    log_sum, smooth, orders = 0.0, 1.0, min(4, len(hypothesis))
    for n in range(1, orders + 1):
        hyp = Counter(tuple(hypothesis[i : i + n]) for i in range(len(hypothesis) - n + 1))
        ref = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
        total = sum(hyp.values())
        matches = sum(min(count, ref[gram]) for gram, count in hyp.items())
        if matches == 0 and n == 1:
            return 0.0  # no token in common (sacrebleu's early stop)
        if matches == 0:
            smooth *= 2
            log_sum += math.log(1.0 / (smooth * total))
        else:
            log_sum += math.log(matches / total)
    brevity = 1.0 if len(hypothesis) >= len(reference) else math.exp(1 - len(reference) / len(hypothesis))
    return min(1.0, brevity * math.exp(log_sum / orders))


# ---------------------------------------------------------------------------------------------
# Simulated results and the measured-vs-simulated tables


def single_proposer(proposers: str) -> bool:
    """Whether a simulation row's `proposers` names one proposer (not a combination)."""
    return len(proposer_names(proposers)) == 1


def oracle_bounds(simulation: pd.DataFrame) -> pd.DataFrame:
    """Per workload and batch size, the best simulated oracle or oracle-combine speedup and its source."""
    bounds = simulation[simulation["policy_kind"].isin(["oracle", "combine"])].dropna(subset=["speedup"])
    best = bounds.loc[bounds.groupby(["workload", "batch_size"])["speedup"].idxmax()]
    several_modes = simulation["mode"].nunique() > 1
    best = best.assign(bound_from=[f"{kind} ({props}{', ' + mode + ' mode' if several_modes else ''})"
                                   for kind, props, mode in zip(best["policy_kind"], best["proposers"], best["mode"])])
    return best[["workload", "batch_size", "speedup", "bound_from"]].rename(columns={"speedup": "oracle_speedup"})


def recommendations(runs: pd.DataFrame, simulation: pd.DataFrame | None) -> pd.DataFrame:
    """Per workload x batch size: the best measured method and k, its speedup, the oracle bound, the gap.

    `runs` must carry `speedup` (see `with_speedup`); the baseline itself (speedup 1) competes, so
    when no method beats it the answer is `none`. gap_pct = (oracle bound - best) / oracle bound.
    """
    measured = runs.dropna(subset=["speedup"])
    if measured.empty:
        return pd.DataFrame(columns=["model", "workload", "batch_size", "method", "k", "label", "speedup",
                                     "oracle_speedup", "bound_from", "gap_pct"])
    keys = ["model", "workload", "batch_size"]
    best = measured.loc[measured.groupby(keys)["speedup"].idxmax(), keys + ["method", "k", "label", "speedup"]]
    if simulation is not None and not simulation.empty:
        best = best.merge(oracle_bounds(simulation), on=["workload", "batch_size"], how="left")
    else:
        best = best.assign(oracle_speedup=np.nan, bound_from="")
    best["gap_pct"] = 100.0 * (best["oracle_speedup"] - best["speedup"]) / best["oracle_speedup"]
    return best.sort_values(keys).reset_index(drop=True)


def fidelity(runs: pd.DataFrame, simulation: pd.DataFrame | None) -> pd.DataFrame:
    """Simulated vs measured speedup for every measured SD cell the simulation covers.

    A fixed-k cell matches simulation rows of the same workload, batch size, single proposer = method
    and fixed-k policy with the same k; an adaptive cell (method `adaptive(<proposers>)`, no k) matches
    the adaptive / adaptive-combine rows of the same proposer set. Several matching rows (several
    traces) are averaged, one row per simulator mode. error_pct = (predicted - measured) / measured.
    """
    columns = ["model", "workload", "method", "k", "label", "batch_size", "mode", "measured", "predicted", "error_pct"]
    if simulation is None or runs.empty:
        return pd.DataFrame(columns=columns)
    keys = ["workload", "proposers", "batch_size", "mode"]
    fixed = simulation[(simulation["policy_kind"] == "fixed") & simulation["proposers"].map(single_proposer)]
    predicted = fixed.groupby(keys + ["k"])["speedup"].mean().rename("predicted").reset_index()
    predicted = predicted.rename(columns={"proposers": "method"}).assign(k=lambda t: t["k"].astype(float))
    adaptive = simulation[simulation["policy_kind"] == "adaptive"]
    adaptive = adaptive.groupby(keys)["speedup"].mean().rename("predicted").reset_index()
    adaptive["method"] = "adaptive(" + adaptive.pop("proposers") + ")"
    cells = runs[(runs["method"] != BASELINE)].dropna(subset=["speedup"])
    cells = cells.assign(k=cells["k"].astype(float))
    table = pd.concat([
        cells.dropna(subset=["k"]).merge(predicted, on=["workload", "method", "k", "batch_size"], how="inner"),
        cells[cells["k"].isna()].merge(adaptive, on=["workload", "method", "batch_size"], how="inner"),
    ], ignore_index=True)
    table = table.rename(columns={"speedup": "measured"})
    table["error_pct"] = 100.0 * (table["predicted"] - table["measured"]) / table["measured"]
    return table[columns].sort_values(["workload", "method", "k", "batch_size"]).reset_index(drop=True)


def oracle_comparison(simulation: pd.DataFrame) -> pd.DataFrame:
    """Simulated oracle speedup of each single proposer next to the combine oracle's.

    Columns: trace, workload, batch_size, series (`oracle ngram`, `combine ngram+draft`), speedup.
    Empty when the simulation has no combine rows.
    """
    single = simulation[(simulation["policy_kind"] == "oracle") & simulation["proposers"].map(single_proposer)]
    combine = simulation[simulation["policy_kind"] == "combine"]
    if combine.empty or single.empty:
        return pd.DataFrame(columns=["trace", "workload", "batch_size", "series", "speedup"])
    both = pd.concat([single, combine])
    several_modes = simulation["mode"].nunique() > 1
    both = both.assign(series=[f"{kind} {props}" + (f" ({mode})" if several_modes else "")
                               for kind, props, mode in zip(both["policy_kind"], both["proposers"], both["mode"])])
    return both[["trace", "workload", "batch_size", "series", "speedup"]].reset_index(drop=True)
