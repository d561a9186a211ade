"""The report's answer, before the evidence: the verdict, latency, and why speculation pays or not here."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from specscope.analysis import breakeven, figures, latency, metrics, verdict
from specscope.analysis.page import ReportContext, Section, ms, pct, x
from specscope.analysis.sections.common import no_runs, runs_settings, simulation_settings

VERDICT_ID, LATENCY_ID, WHY_ID = "verdict", "latency", "why"


def _latency(ctx: ReportContext) -> pd.DataFrame:
    return latency.cell_latency(ctx.study.requests, ctx.runs) if not ctx.runs.empty else pd.DataFrame()


def verdict_table(ctx: ReportContext) -> pd.DataFrame:
    """The measured verdicts (`verdict.measured_verdicts`) with each cell's latency change; empty without speedups."""
    if not ctx.has_speedups:
        return pd.DataFrame()
    cells = _latency(ctx)
    change = latency.latency_change(cells) if not cells.empty else None
    return verdict.measured_verdicts(ctx.runs, ctx.study.requests, change)


def verdict_rows(ctx: ReportContext) -> list[dict]:
    """The verdict as plain rows (what `specscope report`, `sweep` and `demo` print, and their `--json` "verdict"):
    workload, batch_size, verdict, method, gain_pct, uncertainty_pct (None when unknown), per_token_latency_change_pct."""
    table = verdict_table(ctx)
    rows = []
    for _, row in table.iterrows():
        rows.append({
            "workload": row["workload"], "batch_size": int(row["batch_size"]), "verdict": row["verdict"],
            "method": row["label"], "gain_pct": round(float(row["gain_pct"]), 2),
            "uncertainty_pct": None if pd.isna(row["uncertainty_pct"]) else round(float(row["uncertainty_pct"]), 2),
            "per_token_latency_change_pct": (None if pd.isna(row.get("per_token_s_change_pct", np.nan))
                                             else round(float(row["per_token_s_change_pct"]), 2)),
        })
    return rows


def verdict_line(row: dict) -> str:
    """One verdict row for a terminal: `code-edit, batch 1: enable ngram k=3 (+12.0% ± 4.1%; per-token latency -11%)`."""
    gain = f"{row['gain_pct']:+.1f}%" + (f" ± {row['uncertainty_pct']:.1f}%" if row["uncertainty_pct"] is not None else "")
    latency_note = ("" if row["per_token_latency_change_pct"] is None
                    else f"; per-token latency {row['per_token_latency_change_pct']:+.0f}%")
    action = f"enable {row['method']}" if row["verdict"] == verdict.ENABLE else f"{row['verdict']} (best: {row['method']})"
    return f"{row['workload']}, batch {row['batch_size']}: {action} ({gain}{latency_note})"


def verdict_section(ctx: ReportContext) -> Section:
    section = Section("Verdict", anchor=VERDICT_ID, intro=(
        "Should you turn speculative decoding on? Per workload and batch size, the measured method with the "
        "highest throughput against plain decoding (<code>none</code>) on the same requests: <b>enable</b> where "
        "its gain is larger than its uncertainty, <b>do not enable</b> where it is slower by more than that, "
        "<b>no measurable difference</b> where the gain is within it. The latency columns compare the same two "
        "cells (p50 over requests; a negative change is faster). The evidence follows: "
        f"<a href='#{LATENCY_ID}'>latency</a>, <a href='#{WHY_ID}'>why it pays or not</a>, then every measured, "
        "traced and simulated result."))
    if not ctx.has_speedups:
        section.missing = no_runs(ctx.runs)
        return section
    table = verdict_table(ctx)
    if table.empty:
        section.missing = "no workload and batch size has both a `none` cell and a speculative cell."
        return section
    shown = pd.DataFrame({
        "workload": table["workload"], "batch size": table["batch_size"],
        "verdict": table["verdict"], "method (best measured)": table["label"],
        "throughput gain": [_gain(g, u) for g, u in zip(table["gain_pct"], table["uncertainty_pct"])],
    })
    if "per_token_s_change_pct" in table:
        shown["per-token latency p50"] = [_change(b, c) for b, c in zip(table["per_token_s_base"],
                                                                         table["per_token_s_change_pct"])]
        shown["time to first token p50"] = [_change(b, c) for b, c in zip(table["ttft_s_base"],
                                                                           table["ttft_s_change_pct"])]
        shown["end-to-end latency p50"] = [_change(b, c) for b, c in zip(table["latency_s_base"],
                                                                          table["latency_s_change_pct"])]
    if table["model"].nunique() > 1:
        shown.insert(0, "model", table["model"])
    section.table(shown, css="verdict", fold_over=None)
    section.paragraph(html.escape(_uncertainty_note(table)), css="settings")
    busy = busy_note(ctx.runs)
    if busy:
        section.paragraph(html.escape(busy))
    beyond = _simulated_verdicts(ctx, table)
    if beyond is not None:
        section.paragraph(
            "Batch sizes that were not measured, from the simulator (the traces replayed through the cost model "
            "fitted on this machine): the deployable policy (fixed k or adaptive) with the best simulated speedup; "
            "its uncertainty is the simulator's mean error against the measured cells (see "
            "<a href='#simulator-fidelity'>Simulator fidelity</a>).")
        section.table(beyond)
    section.paragraph(html.escape(runs_settings(ctx.runs)), css="settings")
    return section


def busy_note(runs: pd.DataFrame) -> str:
    """Cells measured while other processes competed for the CPU (summary.json `contention`)."""
    if "busy" not in runs.columns:
        return ""
    busy = runs[runs["busy"].fillna(False).astype(bool)]
    if busy.empty:
        return ""
    names = ", ".join(f"{w} {label} b={b}" for w, label, b in zip(busy["workload"], busy["label"], busy["batch_size"]))
    return (f"Warning: {len(busy)} of {len(runs)} cells ran (in at least one repeat) on a busy machine — other "
            f"processes took CPU time, so their timings are slower than the engine and their verdicts less certain: "
            f"{names}.")


def _gain(gain_pct: float, uncertainty_pct: float) -> str:
    if np.isnan(uncertainty_pct):
        return f"{gain_pct:+.1f}% (uncertainty unknown)"
    return f"{gain_pct:+.1f}% ± {uncertainty_pct:.1f}%"


def _change(base_s, change_pct) -> str:
    """`41.2 ms -> 36.0 ms (-12.6%)`: none's p50, the method's, the change."""
    if base_s is None or pd.isna(base_s) or pd.isna(change_pct):
        return ""
    return f"{ms(base_s)} → {ms(base_s * (1 + change_pct / 100))} ({pct(change_pct)})"


def _uncertainty_note(table: pd.DataFrame) -> str:
    sources = set(table["uncertainty_from"]) - {""}
    parts = []
    if verdict.FROM_REPEATS in sources:
        parts.append("Uncertainty (±): 2 x the combined relative spread of the two cells' throughput over their "
                     "repeated runs.")
    if verdict.FROM_REQUESTS in sources:
        matched = table.loc[table["uncertainty_from"] == verdict.FROM_REQUESTS, "matched"]
        low, high = int(matched.min()), int(matched.max())
        parts.append(
            f"Uncertainty (±){' elsewhere' if parts else ''}: 2 standard errors of the mean per-request speed ratio "
            f"(output tokens / latency, with and without speculation) over the {low if low == high else f'{low}-{high}'}"
            " requests both cells ran. The cells were run once: this is the spread over "
            "prompts, not run-to-run machine noise (repeat the cells for that); with few requests it is itself "
            "rough.")
    if not sources or (table["uncertainty_from"] == "").any():
        parts.append("Where the uncertainty is unknown (fewer than 2 requests with a latency, no repeats) the "
                     "verdict goes by the sign of the gain alone.")
    return " ".join(parts)


def _simulated_verdicts(ctx: ReportContext, measured: pd.DataFrame) -> pd.DataFrame | None:
    sim = ctx.study.simulation
    if sim is None:
        return None
    if "serve" in set(sim["mode"]):  # continuous batching: the deployment's own regime
        sim = sim[sim["mode"] == "serve"]
    batches = measured.groupby("workload")["batch_size"].apply(set).to_dict()
    fidelity = metrics.fidelity(ctx.runs, sim, ctx.study.twins)
    errors = fidelity.assign(abs_err=fidelity["error_pct"].abs()).groupby("workload")["abs_err"].mean().to_dict()
    table = verdict.simulated_verdicts(sim, batches, errors)
    if table.empty:
        return None
    return pd.DataFrame({
        "workload": table["workload"], "batch size": table["batch_size"], "verdict": table["verdict"],
        "best simulated policy": table["policy"],
        "simulated gain": [(f"{g:+.1f}% ± {u:.1f}% (model error)" if not np.isnan(u) else f"{g:+.1f}% (model error "
                            "unknown: no measured cell to compare)") for g, u in zip(table["gain_pct"],
                                                                                     table["uncertainty_pct"])],
    })


def latency_section(ctx: ReportContext) -> Section:
    section = Section("Latency", anchor=LATENCY_ID, intro=(
        "What a user waits for. <b>Time to first token</b> (TTFT): from the request taking a batch slot to its first "
        "output token (the prompt's prefill). <b>Per-token latency</b>: the time between output tokens after the "
        "first, (end-to-end - TTFT) / (output tokens - 1). <b>End-to-end</b>: to the last token. p50 and p90 are over "
        "the requests of a cell."))
    cells = _latency(ctx)
    sim = latency.simulated_latency(ctx.study.simulation)
    if cells.empty and sim.empty:
        section.missing = ("no request latencies (runs/<cell>/requests.jsonl latency_s) and no simulated latencies "
                           "(simulation.csv sd_mean_latency_s); run `specscope sweep` or `specscope run`.")
        return section
    if not cells.empty:
        note = ("" if cells["has_ttft"].all() else
                " Cells without ttft_s (written by an older specscope) show no TTFT; their per-token latency is "
                "end-to-end / output tokens, prefill included.")
        section.blocks.append(ctx.counter.figure(
            figures.throughput_vs_latency(cells),
            "Throughput against per-token latency (p50), one point per batch size (marker), one line per method "
            "(colour), one panel per workload. To serve under a per-token latency limit, take the highest point "
            "left of it: that method and batch size give the most tokens per second within the limit." + note + " "
            + html.escape(runs_settings(ctx.runs))))
        section.table(pd.DataFrame({
            "workload": cells["workload"], "batch size": cells["batch_size"], "method": cells["label"],
            "requests": cells["requests"], "throughput": cells["throughput_tok_s"].map(lambda v: f"{v:.1f} tok/s"),
            "TTFT p50": cells["ttft_s_p50"].map(ms), "TTFT p90": cells["ttft_s_p90"].map(ms),
            "per-token p50": cells["per_token_s_p50"].map(ms), "per-token p90": cells["per_token_s_p90"].map(ms),
            "end-to-end p50": cells["latency_s_p50"].map(ms), "end-to-end p90": cells["latency_s_p90"].map(ms),
        }))
    if not sim.empty:
        section.paragraph(
            "Simulated (serve mode: every request waits from time 0, so its latency includes queueing for a batch "
            "slot): mean request completion time without and with speculation, for the deployable policy with the "
            "best simulated speedup at each batch size. " + html.escape(simulation_settings(ctx.study, ctx.study.simulation)))
        several_modes = sim["mode"].nunique() > 1
        shown = pd.DataFrame({
            "workload": sim["workload"], "batch size": sim["batch_size"], "policy": sim["policy"],
            "speedup": sim["speedup"].map(x), "plain decoding": sim["ar_latency_s"].map(ms),
            "with speculation": sim["sd_latency_s"].map(ms), "change": sim["change_pct"].map(pct),
        })
        if several_modes:
            shown.insert(1, "mode", sim["mode"])
        section.table(shown)
    return section


def why_section(ctx: ReportContext) -> Section:
    section = Section("Why speculation pays or not", anchor=WHY_ID, intro=(
        "A speculative step verifies k drafted tokens plus one in a single target forward, and (except for the "
        "n-gram) pays for drafting them; it commits the acceptance length L tokens (accepted drafts + 1). It beats "
        "plain decoding only when L is larger than the step's time over a plain step's: the break-even acceptance "
        "length. On hardware where a forward over k + 1 tokens costs nearly what one token costs (a large GPU at "
        "small batch) almost any acceptance pays; where it costs much more (a CPU, or a large batch), a short "
        "acceptance length cannot."))
    costs = breakeven.step_costs(ctx.study.profile)
    if costs.empty:
        section.missing = ("no profile.csv with batch_size and k columns (step timings of this model and hardware); "
                           "run `specscope profile -o DIR/profile.csv` (a sweep's [profile] section writes it).")
        return section
    acceptance = breakeven.measured_acceptance(ctx.runs) if not ctx.runs.empty else pd.DataFrame(
        columns=["workload", "method", "k", "batch_size", "mean_acc_len"])
    profiled = sorted(costs["batch_size"].unique())
    acceptance = acceptance[acceptance["batch_size"].isin(profiled)]
    section.blocks.append(ctx.counter.figure(
        figures.break_even(costs, acceptance),
        "Measured step time relative to a plain decoding step (k = 0), against the number of draft tokens k, one "
        "panel per profiled batch size (profile.csv: medians over its contexts, per-step host time included). "
        "The solid black line is the target's verify forward alone (the break-even for a proposer that costs "
        "nothing, about the n-gram); dashed lines add each proposer's measured drafting time. The value of a line at "
        "k is the acceptance length a k-token step must reach to break even. Points are the measured cells' mean "
        "acceptance lengths (colour = method, marker = workload): above their method's line speculation paid, "
        "below it lost. The dotted grey line is k + 1, the most a step can commit. "
        + html.escape(runs_settings(ctx.runs) if not ctx.runs.empty else "")))
    table = breakeven.summary(costs, acceptance)
    if not table.empty:
        section.table(pd.DataFrame({
            "batch size": table["batch_size"], "method": [f"{m} k={k}" for m, k in zip(table["method"], table["k"])],
            "tokens verified per step": table["k"] + 1,
            "step cost, verify only": table["verify_cost"].map(x),
            "step cost with drafting = break-even": table["break_even"].map(
                lambda v: "drafting not profiled" if pd.isna(v) else f"{v:.2f}"),
            "measured acceptance length": [f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"
                                           for lo, hi in zip(table["acc_low"], table["acc_high"])],
            "speculation": table["pays"],
        }))
    return section
