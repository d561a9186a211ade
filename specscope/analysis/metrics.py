"""The study's numbers: tables computed from a loaded study, one function per metric.

Words as in the glossary of docs/design.md. Measured speedup is a cell's throughput over the throughput of
the `none` cell with the same model, workload and batch size (and the same repeat, where a sweep
measured each cell several times: the two ran minutes apart, so their ratio cancels a drift);
`cells` folds a cell's repeats into its median and spread. Trace-based metrics use the
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
# One measured cell (its repeats share these).
CELL_KEY = ["model", "workload", "method", "k", "label", "batch_size"]
NUMERIC_RUN_COLUMNS = ["generated_tokens", "wall_seconds", "throughput_tok_s", "mean_acc_len", "acceptance_rate",
                       *(f"t_{p}" for p in PHASES), "num_steps", "peak_rss_mb", "others_cpu", "ar_throughput",
                       "speedup"]
# BLEU-4 bin edges for the n-gram-vs-other figure (the study's threshold was about 0.6).
BLEU_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


# ---------------------------------------------------------------------------------------------
# Measured runs


def with_speedup(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` plus `ar_throughput` (the matching `none` cell's: of the same repeat where there is one, else their
    mean) and `speedup`; NaN where no baseline."""
    out = runs.copy()
    if "repeat" not in out.columns:
        out["repeat"] = 1
    out["repeat"] = out["repeat"].fillna(1).astype(int)
    plain = out[out["method"] == BASELINE]
    same = plain.groupby(BASELINE_KEY + ["repeat"])["throughput_tok_s"].mean().rename("_ar_same").reset_index()
    mean = plain.groupby(BASELINE_KEY)["throughput_tok_s"].mean().rename("_ar_mean").reset_index()
    out = out.drop(columns=["ar_throughput"], errors="ignore")
    out = out.merge(same, on=BASELINE_KEY + ["repeat"], how="left").merge(mean, on=BASELINE_KEY, how="left")
    out["ar_throughput"] = out.pop("_ar_same").fillna(out.pop("_ar_mean"))
    out["speedup"] = out["throughput_tok_s"] / out["ar_throughput"]
    return out


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per measured cell, its repeats folded: the median of each number (speedup: of the repeats' own
    speedups, each against the `none` cell of its repeat), `speedup_spread` (half the range of those speedups;
    NaN from a single repeat), `repeats`, `throughput_rel_spread` (the relative standard deviation of throughput
    over the repeats: the uncertainty `verdict.measured_verdicts` uses; NaN from a single repeat), `busy` (any
    repeat ran on a busy machine) and `cell` (the first repeat's folder, whose requests the study loads)."""
    runs = with_speedup(runs)
    if runs.empty:
        return runs.assign(speedup_spread=pd.Series(dtype=float), repeats=pd.Series(dtype=int))
    runs = runs.sort_values("repeat", kind="stable")
    if "busy" not in runs.columns:
        runs["busy"] = False
    runs["busy"] = runs["busy"].fillna(False).astype(bool)
    groups = runs.groupby(CELL_KEY, dropna=False, sort=False)
    numeric = [c for c in NUMERIC_RUN_COLUMNS if c in runs.columns]
    for column in numeric:
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    agg = {c: ("median" if c in numeric else "first") for c in runs.columns if c not in CELL_KEY}
    agg.update(busy="max", partial="max")
    out = groups.agg(agg)
    spread = groups["speedup"].agg(lambda s: (s.max() - s.min()) / 2 if s.notna().sum() > 1 else np.nan)
    out["speedup_spread"] = spread
    out["repeats"] = groups.size()
    rel = groups["throughput_tok_s"].agg(lambda s: float(s.std(ddof=1) / s.mean()) if s.notna().sum() > 1 else np.nan)
    if "throughput_rel_spread" in out.columns:  # a single run may carry its own (a summary's repeats within it)
        rel = rel.fillna(pd.to_numeric(out["throughput_rel_spread"], errors="coerce"))
    out["throughput_rel_spread"] = rel
    return out.reset_index()


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
    """Per workload and batch size, the best simulated oracle or oracle-combine speedup and its source (marked "at
    least" where it replayed a server's censored trace), with the distinct requests it rests on (`bound_distinct`:
    fewer than the batch size = resampled, `bound_resampled`)."""
    bounds = simulation[simulation["policy_kind"].isin(["oracle", "combine"])].dropna(subset=["speedup"])
    best = bounds.loc[bounds.groupby(["workload", "batch_size"])["speedup"].idxmax()]
    several_modes = simulation["mode"].nunique() > 1
    lower = (best["lower_bound"].fillna(False).astype(bool) if "lower_bound" in best.columns
             else pd.Series(False, index=best.index))  # replayed a server's censored trace: at least this
    best = best.assign(bound_from=[f"{kind} ({props}{', ' + mode + ' mode' if several_modes else ''})"
                                   f"{', at least: a censored trace' if low else ''}"
                                   for kind, props, mode, low in zip(best["policy_kind"], best["proposers"],
                                                                     best["mode"], lower)])
    distinct = (pd.to_numeric(best["distinct_requests"], errors="coerce") if "distinct_requests" in best.columns
                else pd.Series(np.nan, index=best.index))
    best = best.assign(bound_distinct=distinct, bound_proposers=best["proposers"],
                       bound_resampled=(distinct < best["batch_size"]) & (best["mode"] != "paper"))
    return best[["workload", "batch_size", "speedup", "bound_from", "bound_distinct", "bound_resampled",
                 "bound_proposers"]].rename(columns={"speedup": "oracle_speedup"})


def recommendations(runs: pd.DataFrame, simulation: pd.DataFrame | None, fidelity_table: pd.DataFrame | None = None,
                    fit_errors: dict | None = None) -> pd.DataFrame:
    """Per workload x batch size: the best measured method and k, its speedup, the oracle bound, the gap, and the
    model's error beside it (whether to enable speculation at all is `verdict.py`'s answer, with its uncertainty).

    `runs` must carry `speedup` (see `with_speedup`, `cells`); the baseline itself (speedup 1) competes, so when
    no method beats it the answer is `none`. gap_pct = (oracle bound - best) / oracle bound; `bound_distinct` /
    `bound_resampled`: the distinct requests the bound rests on (`oracle_bounds`). `model_error_pct`: the
    simulator's error on this workload — the mean absolute error of its cells' simulated speedups
    (`fidelity_table`: twins where there are), else the cost-model fit's held-out error (`fit_errors`, term ->
    relative error) of the terms the bound uses; `within_error` marks a gap smaller than it.
    """
    columns = ["model", "workload", "batch_size", "method", "k", "label", "speedup", "oracle_speedup", "bound_from",
               "bound_distinct", "bound_resampled", "gap_pct", "fidelity_error_pct", "fidelity_cells", "fit_error_pct",
               "model_error_pct", "within_error"]
    measured = runs.dropna(subset=["speedup"])
    if measured.empty:
        return pd.DataFrame(columns=columns)
    keys = ["model", "workload", "batch_size"]
    best = measured.loc[measured.groupby(keys)["speedup"].idxmax(), keys + ["method", "k", "label", "speedup"]]
    if simulation is not None and not simulation.empty:
        best = best.merge(oracle_bounds(simulation), on=["workload", "batch_size"], how="left")
    else:
        best = best.assign(oracle_speedup=np.nan, bound_from="", bound_distinct=np.nan, bound_resampled=False,
                           bound_proposers="")
    best["gap_pct"] = 100.0 * (best["oracle_speedup"] - best["speedup"]) / best["oracle_speedup"]
    best = _model_error(best, fidelity_table, fit_errors or {})
    return best[columns].sort_values(keys).reset_index(drop=True)


def _model_error(table: pd.DataFrame, fidelity_table: pd.DataFrame | None, fit_errors: dict) -> pd.DataFrame:
    """Add fidelity_error_pct / fidelity_cells (per workload), fit_error_pct (per bound), model_error_pct and
    within_error (see `recommendations`)."""
    table = table.copy()
    if fidelity_table is not None and not fidelity_table.empty:
        per = fidelity_table.assign(abs_error=fidelity_table["error_pct"].abs()).groupby("workload")["abs_error"]
        table["fidelity_error_pct"] = table["workload"].map(per.mean())
        table["fidelity_cells"] = table["workload"].map(per.size()).fillna(0).astype(int)
    else:
        table["fidelity_error_pct"], table["fidelity_cells"] = np.nan, 0

    def fit_error(proposers) -> float:
        terms = ["target"] + [f"draft:{p}" for p in proposer_names(str(proposers or ""))]
        known = [fit_errors[t] for t in terms if t in fit_errors and fit_errors[t] == fit_errors[t]]
        return 100.0 * max(known) if known else np.nan

    table["fit_error_pct"] = [fit_error(p) for p in table.get("bound_proposers", pd.Series("", index=table.index))]
    table["model_error_pct"] = table["fidelity_error_pct"].fillna(table["fit_error_pct"])
    table["within_error"] = table["gap_pct"].abs() < table["model_error_pct"]
    return table


def fit_errors(cost_model: dict | None) -> dict[str, float]:
    """term -> relative error of a fitted cost model (its provenance): held out where recorded, else in sample."""
    provenance = (cost_model or {}).get("provenance")
    if not isinstance(provenance, dict):
        return {}
    out = {}
    for key in ("mean_relative_error", "held_out_relative_error"):  # held out wins where both exist
        table = provenance.get(key)
        if isinstance(table, dict):
            out.update({k: float(v) for k, v in table.items() if isinstance(v, (int, float))})
    return out


def fidelity(runs: pd.DataFrame, simulation: pd.DataFrame | None, twins: pd.DataFrame | None = None) -> pd.DataFrame:
    """Simulated vs measured speedup for every measured SD cell the simulation covers.

    With twins (`twins.csv`): each cell against its own twin (same requests, batch size and policy; mode
    `serve`). Otherwise a fixed-k cell matches simulation rows of the same workload, batch size, single proposer =
    method and fixed-k policy with the same k; an adaptive cell (method `adaptive(<proposers>)`, no k) matches
    the adaptive / adaptive-combine rows of the same proposer set. Several matching rows (several traces) are
    averaged, one row per simulator mode. error_pct = (predicted - measured) / measured. Where the cells carry
    them: `spread_pct` (the measured speedup's spread over repeats), `busy`, and the measured and simulated
    shares of the step time spent drafting (`measured_draft_share`, `predicted_draft_share`), to tell which part
    of the step a miss comes from.
    """
    columns = ["model", "workload", "method", "k", "label", "batch_size", "mode", "measured", "predicted", "error_pct",
               "spread_pct", "busy", "measured_draft_share", "predicted_draft_share"]
    if (simulation is None and twins is None) or runs.empty:
        return pd.DataFrame(columns=columns)
    cells = runs[(runs["method"] != BASELINE)].dropna(subset=["speedup"])
    cells = cells.assign(k=pd.to_numeric(cells["k"], errors="coerce").astype(float))
    if twins is not None and not twins.empty:
        twin = twins[["cell", "speedup"] + [c for c in ("draft_share",) if c in twins.columns]]
        twin = twin.rename(columns={"speedup": "predicted", "draft_share": "predicted_draft_share"})
        table = cells.merge(twin, on="cell", how="inner").assign(mode="serve")
    else:
        keys = ["workload", "proposers", "batch_size", "mode"]
        fixed = simulation[(simulation["policy_kind"] == "fixed") & simulation["proposers"].map(single_proposer)]
        predicted = fixed.groupby(keys + ["k"])["speedup"].mean().rename("predicted").reset_index()
        predicted = predicted.rename(columns={"proposers": "method"}).assign(k=lambda t: t["k"].astype(float))
        adaptive = simulation[simulation["policy_kind"] == "adaptive"]
        adaptive = adaptive.groupby(keys)["speedup"].mean().rename("predicted").reset_index()
        adaptive["method"] = "adaptive(" + adaptive.pop("proposers") + ")"
        table = pd.concat([
            cells.dropna(subset=["k"]).merge(predicted, on=["workload", "method", "k", "batch_size"], how="inner"),
            cells[cells["k"].isna()].merge(adaptive, on=["workload", "method", "batch_size"], how="inner"),
        ], ignore_index=True)
    table = table.rename(columns={"speedup": "measured"})
    table["error_pct"] = 100.0 * (table["predicted"] - table["measured"]) / table["measured"]
    spread = table["speedup_spread"] if "speedup_spread" in table.columns else pd.Series(np.nan, index=table.index)
    table["spread_pct"] = 100.0 * spread / table["measured"]
    if "busy" not in table.columns:
        table["busy"] = False
    phases = [f"t_{p}" for p in PHASES]
    if all(p in table.columns for p in phases):
        total = table[phases].apply(pd.to_numeric, errors="coerce").sum(axis=1).replace(0, np.nan)
        table["measured_draft_share"] = pd.to_numeric(table["t_draft"], errors="coerce") / total
    else:
        table["measured_draft_share"] = np.nan
    if "predicted_draft_share" not in table.columns:
        table["predicted_draft_share"] = np.nan
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
