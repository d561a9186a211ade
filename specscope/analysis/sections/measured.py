"""Evidence from the measured cells: speedup, where the time goes, memory, acceptance per request."""

from __future__ import annotations

import html

import pandas as pd

from specscope.analysis import figures, metrics
from specscope.formats.summary import PHASES
from specscope.settings import BASELINE
from specscope.analysis.page import ReportContext, Section, num, pct, share, x
from specscope.analysis.sections.common import no_runs, runs_settings

ADAPTIVE_CHOICES_NOTE = (
    "What each <code>--k adaptive</code> cell chose, over its decoding steps of each sequence. Adaptive picks k (and "
    "the proposer) every step from a cost model and the acceptance seen so far; a safety check compares that choice, "
    "on the steps already run, with plain decoding and with simple fixed-k rules, and each step follows whichever has "
    "done best. <i>Cost model's choice</i>: share of steps where the model's own choice was used; <i>plain decoding "
    "(fallback)</i>: share where the check fell back to not drafting; the rest followed a fixed-k rule.")


def speedup_section(ctx: ReportContext) -> Section:
    section = Section("Measured speedup against batch size")
    if not ctx.has_speedups:
        section.missing = no_runs(ctx.runs)
        return section
    section.blocks.append(ctx.counter.figure(
        figures.speedup_vs_batch(ctx.runs),
        "Measured speedup (generation throughput over the <code>none</code> cell with the same model, "
        "workload and batch size) against batch size; one panel per workload, one line per method and k. "
        "The dotted line is 1 (no gain). " + html.escape(runs_settings(ctx.runs))))
    chose = adaptive_choices(ctx.runs)
    if chose is not None:
        section.paragraph(ADAPTIVE_CHOICES_NOTE)
        section.table(chose)
    return section


def adaptive_choices(runs: pd.DataFrame) -> pd.DataFrame | None:
    """A row per measured adaptive cell that recorded its choices (summary.json `adaptive_choices`), else None."""
    if "adaptive_choices" not in runs:
        return None
    rows = []
    for _, run in runs[runs["adaptive_choices"].notna()].sort_values(["workload", "label", "batch_size"]).iterrows():
        c = run["adaptive_choices"]
        drafted = [f"{name} {p['share']:.0%} (mean k {p['mean_k']:.1f})" for name, p in c.get("proposers", {}).items()
                   if p.get("mean_k") is not None and p.get("share") is not None]
        rows.append({"workload": run["workload"], "method": run["label"], "batch size": run["batch_size"],
                     "speedup": x(run.get("speedup")), "steps drafting": ", ".join(drafted) or "none",
                     "steps not drafting": share(c.get("no_draft_share")),
                     "cost model's choice": share(c.get("guard_followed_model_share")),
                     "plain decoding (fallback)": share(c.get("guard_followed_plain_share"))})
    return pd.DataFrame(rows) if rows else None


def time_breakdown_section(ctx: ReportContext) -> Section:
    section = Section("Where the time goes")
    runs = ctx.study.runs
    if runs.empty:
        section.missing = no_runs(runs)
        return section
    table = metrics.time_per_token(runs)
    if table[[f"ms_{p}" for p in PHASES]].isna().all().all():
        section.missing = "the runs' summary.json files carry no time_breakdown_s."
        return section
    section.blocks.append(ctx.counter.figure(
        figures.time_breakdown(table),
        "Time per generated token, split into draft (the proposer), verify (the target's forward), sample "
        "(accepting or rejecting the drafts) and overhead (scheduling, cache bookkeeping, host work); one bar per "
        "method, one panel per workload (rows) and batch size (columns). "
        + html.escape(runs_settings(runs))))
    return section


def memory_section(ctx: ReportContext) -> Section:
    section = Section("Memory overhead")
    runs = ctx.study.runs
    if runs.empty:
        section.missing = no_runs(runs)
        return section
    table = metrics.memory_overhead(runs)
    table = table[table["method"] != BASELINE].dropna(subset=["extra_mb"])
    if table.empty:
        section.missing = ("needs peak_rss_mb for a method and for the `none` cell of the same workload and "
                           "batch size.")
        return section
    section.blocks.append(ctx.counter.figure(
        figures.memory_overhead(table),
        "Peak resident memory (RSS) of each method over the <code>none</code> cell with the same workload "
        "and batch size, in MB; a bar per batch size. " + html.escape(runs_settings(runs))))
    table = table.sort_values(["workload", "label", "batch_size"], key=_none_first)
    section.table(pd.DataFrame({
        "workload": table["workload"], "method": table["label"], "batch size": table["batch_size"],
        "peak RSS (MB)": table["peak_rss_mb"].map(num), "over none (MB)": table["extra_mb"].map(num),
        "over none": table["extra_pct"].map(pct),
    }))
    return section


def _none_first(column: pd.Series) -> pd.Series:
    return column.map(lambda v: ("0" if v == BASELINE else "1") + str(v)) if column.name == "label" else column


def request_acceptance_section(ctx: ReportContext) -> Section:
    from specscope.analysis.sections.traces import trace_acceptance_boxplots

    section = Section("Per-request mean acceptance length")
    requests = ctx.study.requests
    requests = requests.dropna(subset=["mean_acc_len"]) if not requests.empty else requests
    sd_requests = requests[requests["method"] != BASELINE] if not requests.empty else requests
    if not sd_requests.empty:
        section.blocks.append(ctx.counter.figure(
            figures.measured_acc_boxplots(sd_requests, "mean acceptance length (tokens per step)"),
            "Measured: distribution over requests of each request's mean acceptance length (tokens committed / "
            "steps), a box per method; one panel per workload (rows) and batch size (columns); box = quartiles, "
            "whiskers = 1.5 IQR, triangle = mean. " + html.escape(runs_settings(ctx.study.runs))))
    if ctx.study.traces:
        section.blocks.append(trace_acceptance_boxplots(ctx))
    if not section.blocks:
        section.missing = ("needs runs/<cell>/requests.jsonl with per-step counts of an SD method, or traces; "
                           "run `specscope sweep` or `specscope trace`.")
    return section
