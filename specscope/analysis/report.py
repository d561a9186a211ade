"""Assemble the study's report: one self-contained `report.html` (figures inlined as base64 PNG).

    from specscope.analysis.report import write_report
    result = write_report("specscope-out")      # -> specscope-out/report.html

Sections come in a fixed order: the recommendation, measured results, acceptance traces, simulated
bounds, simulator fidelity. Each figure has a caption saying what it shows and the settings of
the runs, traces or simulation behind it. A section whose data the folder lacks is kept, with one
line saying what is missing and how to produce it, so nothing disappears silently. The page needs
no network to view.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from specscope import __version__
from specscope.analysis import figures, metrics
from specscope.analysis.loaders import Study, load_study, trace_workload
from specscope.formats.summary import PHASES
from specscope.settings import BASELINE
from specscope.analysis.roofline import analytic_sections
from specscope.analysis.trees import tree_sections
from specscope.errors import SpecscopeError
from specscope.formats.files import write_text_atomic
from specscope.formats.trace import Trace

REPORT_NAME = "report.html"
FIGURE_DPI = 100


@dataclass
class Block:
    """One piece of a section: a figure (PNG bytes + caption), a table, or a paragraph (HTML)."""

    html: str
    is_figure: bool = False


@dataclass
class Section:
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)
    missing: str = ""  # why the section shows nothing (empty when it shows something)


@dataclass
class ReportResult:
    path: Path
    sections: list[Section]

    @property
    def figures(self) -> int:
        return sum(b.is_figure for s in self.sections for b in s.blocks)

    @property
    def missing(self) -> list[str]:
        return [s.title for s in self.sections if s.missing]


def write_report(root: str | Path, output: str | Path | None = None) -> ReportResult:
    """Read the study folder `root` and write its report (default `root/report.html`) atomically."""
    study = load_study(root)
    if study.is_empty:
        raise SpecscopeError(
            f"nothing to report in '{study.root}': expected runs/<cell>/summary.json, traces/*.jsonl or "
            "simulation.csv; run `specscope sweep CONFIG -o DIR` or `specscope demo -o DIR` first"
        )
    path = Path(output) if output is not None else study.root / REPORT_NAME
    sections = build_sections(study)
    write_text_atomic(path, render_html(study, sections))
    return ReportResult(path, sections)


def build_sections(study: Study) -> list[Section]:
    """Every section of the report, in order, with its figures or the reason it is empty."""
    runs = metrics.with_speedup(study.runs) if not study.runs.empty else study.runs
    counter = _FigureCounter()
    return [
        _recommendation(study, runs),
        _measured_speedup(study, runs, counter),
        _time_breakdown(study, counter),
        _memory(study, counter),
        _acceptance_by_position(study, counter),
        _request_distributions(study, counter),
        _bleu_overlap(study, counter),
        _proposer_difference(study, counter),
        _simulated(study, counter),
        *tree_sections(study, runs, counter),  # chain against tree, measured and simulated
        *analytic_sections(study, counter),  # only when the simulation's cost model is analytic
        _combine(study, counter),
        _fidelity(study, runs, counter),
    ]


# ---------------------------------------------------------------------------------------------
# Settings lines for captions


def runs_settings(runs: pd.DataFrame) -> str:
    """One line naming the measured cells' model, device, threads, workloads, methods, batch sizes."""
    def values(col):
        return ", ".join(str(v) for v in sorted(runs[col].dropna().unique(), key=str)) or "?"
    partial = int(runs["partial"].sum())
    temperatures = pd.to_numeric(runs["temperature"], errors="coerce").dropna().unique()
    sampling = ("" if not len(temperatures) else "greedy; " if (temperatures == 0).all() else
                f"temperature {', '.join(f'{t:g}' for t in sorted(temperatures))}; ")
    text = (f"Measured: model {values('model')} on {values('device')} ({values('threads')} threads); {sampling}"
            f"workloads {values('workload')}; methods {', '.join(sorted(set(runs['label'])))}; "
            f"batch sizes {', '.join(str(b) for b in sorted(runs['batch_size'].unique()))}; {len(runs)} cells")
    if partial:
        text += f", {partial} of them partial (stopped before every request finished)"
    return text + "."


def trace_settings(trace: Trace) -> str:
    """One line naming a trace's model, hardware, workload, k_max, proposers and size."""
    parts = []
    if trace.model:
        parts.append(f"model {trace.model}")
    if trace.hardware:
        parts.append(f"hardware {trace.hardware}")
    parts.append(f"workload {trace_workload(trace)}")
    parts.append(f"k_max {trace.k_max}" if trace.k_max else "k_max not recorded")
    parts.append(f"proposers {', '.join(trace.proposers)}")
    parts.append(f"{len(trace.requests)} requests")
    return f"Trace {trace.name}: " + ", ".join(parts) + "."


def simulation_settings(study: Study, simulation: pd.DataFrame) -> str:
    """One line naming the simulated traces, policies, batch sizes, simulator mode and cost model."""
    def values(col):
        return ", ".join(str(v) for v in sorted(simulation[col].dropna().unique(), key=str) if str(v))
    text = (f"Simulated by `specscope simulate`: traces {values('trace')}; policies {values('policy')}; "
            f"batch sizes {', '.join(str(b) for b in sorted(simulation['batch_size'].unique()))}")
    if values("mode"):
        text += f"; mode {values('mode')}"
    named = values("cost_model") if "cost_model" in simulation.columns else ""
    if named:
        text += f"; cost model {named}"
    if study.cost_model is not None:
        text += f" (cost_model.toml: {_cost_model_name(study)})"
    elif not named:
        text += "; cost model not recorded (no cost_model column, no cost_model.toml)"
    return text + "."


def _cost_model_name(study: Study) -> str:
    """The fitted cost model's name, description and provenance, as the folder records it."""
    model = study.cost_model
    provenance = model.get("provenance") if isinstance(model.get("provenance"), dict) else {}
    parts = [str(model[k]) for k in ("name", "description") if isinstance(model.get(k), str)]
    parts += [f"{k} {provenance[k]}" for k in ("model", "hardware", "engine", "source")
              if isinstance(provenance.get(k), (str, int, float))]
    return "; ".join(parts) or "present"


# ---------------------------------------------------------------------------------------------
# Sections


def _recommendation(study: Study, runs: pd.DataFrame) -> Section:
    section = Section("Recommendation", intro=(
        "For each workload and batch size: the measured method and k with the highest speedup "
        "(<code>none</code> competes, so it is the answer when speculation does not pay), the oracle "
        "bound (best simulated oracle or oracle-combine speedup for that workload and batch size), "
        "and the gap: how much of the bound the best measured method leaves on the table, "
        "(bound - best) / bound. A negative gap means the simulation underestimates this machine."))
    if runs.empty or runs["speedup"].isna().all():
        section.missing = _no_runs(runs)
        return section
    table = metrics.recommendations(runs, study.simulation)
    shown = pd.DataFrame({
        "workload": table["workload"], "batch size": table["batch_size"],
        "best method": table["label"],
        "speedup": table["speedup"].map(_x), "oracle bound": table["oracle_speedup"].map(_x),
        "bound from": table["bound_from"].fillna(""), "gap": table["gap_pct"].map(_pct),
    })
    if table["model"].nunique() > 1:
        shown.insert(0, "model", table["model"])
    section.blocks.append(Block(_table_html(shown)))
    settings = runs_settings(runs)
    if study.simulation is None:
        settings += " No simulation.csv: the oracle bound is not available (run `specscope simulate`)."
    else:
        settings += " " + simulation_settings(study, study.simulation)
        if table["oracle_speedup"].isna().any():
            settings += (" A blank oracle bound: simulation.csv has no oracle row for that workload and batch "
                         "size (simulate a trace of that workload at that batch size).")
    for note in (_measured_adaptive_note(runs), _adaptive_note(study.simulation)):
        if note:
            section.blocks.append(Block(f"<p>{html.escape(note)}</p>"))
    section.blocks.append(Block(f"<p class='settings'>{html.escape(settings)}</p>"))
    return section


def _measured_adaptive_note(runs: pd.DataFrame) -> str:
    """Where a measured `--k adaptive` cell beats the best measured fixed k of its proposers (same model,
    workload and batch size), plain decoding (`none`, speedup 1) included: where every k loses, not
    speculating is the fixed choice to beat."""
    adaptive = runs[runs["method"].str.startswith("adaptive(") & runs["k"].isna() & runs["speedup"].notna()]
    if adaptive.empty:
        return ""
    fixed = runs[(runs["method"] != BASELINE) & runs["k"].notna() & runs["speedup"].notna()]
    wins, compared = [], 0
    for _, row in adaptive.sort_values(["workload", "batch_size"]).iterrows():
        names = set(metrics.proposer_names(row["method"][len("adaptive("):-1]))
        same = fixed[(fixed["model"] == row["model"]) & (fixed["workload"] == row["workload"])
                     & (fixed["batch_size"] == row["batch_size"]) & fixed["method"].isin(names)]
        if same.empty:
            continue
        compared += 1
        best = same.loc[same["speedup"].idxmax()]
        label, speedup = (best["label"], best["speedup"]) if best["speedup"] >= 1.0 else (BASELINE, 1.0)
        if row["speedup"] > speedup:
            wins.append(f"{row['workload']} batch {row['batch_size']} ({row['label']} {row['speedup']:.3f}x vs "
                        f"{label} {speedup:.3f}x)")
    if not compared:
        return ""
    found = "; ".join(wins) if wins else "none"
    return (f"Measured: --k adaptive beats the best measured fixed k of its proposers (or none, where no k beats "
            f"it) in {len(wins)} of {compared} cells: {found}.")


def _adaptive_note(sim: pd.DataFrame | None) -> str:
    """Where the simulated adaptive policy beats the best fixed k of the same proposer(s), trace and mode, plain
    decoding (k = 0, speedup 1) included: one clause per workload, proposers and mode, naming its batch sizes
    and the range of both speedups."""
    if sim is None or "policy_kind" not in sim or not (sim["policy_kind"] == "adaptive").any():
        return ""
    keys = ["trace", "mode", "batch_size", "proposers"]
    fixed = sim[sim["policy_kind"] == "fixed"].groupby(keys)["speedup"].max()
    adaptive = sim[sim["policy_kind"] == "adaptive"]
    wins: dict[tuple, list[tuple[int, float, float]]] = {}
    for _, row in adaptive.iterrows():
        key = tuple(row[k] for k in keys)
        names = set(metrics.proposer_names(row["proposers"]))
        best = fixed[[i for i in fixed.index if i[:3] == key[:3] and set(metrics.proposer_names(i[3])) <= names]]
        best = max([1.0, *best])  # plain decoding is always on offer
        if row["speedup"] > best:
            group = (row["workload"], row["proposers"], row["mode"])
            wins.setdefault(group, []).append((int(row["batch_size"]), float(row["speedup"]), float(best)))
    if not wins:
        return ("Simulated adaptive policies do not beat the best fixed k (plain decoding included) in any cell of "
                "simulation.csv.")
    clauses = []
    for (workload, proposers, mode), cells in wins.items():
        simulated = adaptive[(adaptive["workload"] == workload) & (adaptive["proposers"] == proposers)
                             & (adaptive["mode"] == mode)]["batch_size"].nunique()
        sizes = sorted(b for b, _, _ in cells)
        where = (f"every batch size ({sizes[0]}-{sizes[-1]})" if len(sizes) == simulated > 1
                 else "batch " + ", ".join(map(str, sizes)))
        clauses.append(f"{workload} {proposers} ({mode}) at {where}: {_span([a for _, a, _ in cells])} vs "
                       f"{_span([f for _, _, f in cells])}")
    return (f"Simulated adaptive beats the best fixed k of its proposers (plain decoding included) in "
            f"{sum(map(len, wins.values()))} of {len(adaptive)} cells: " + "; ".join(clauses) + ".")


def _span(values: list[float]) -> str:
    """'1.25x', or '0.95-1.00x' for a range."""
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return f"{low}x" if low == high else f"{low}-{high}x"


def _measured_speedup(study: Study, runs: pd.DataFrame, counter) -> Section:
    section = Section("Measured speedup against batch size")
    if runs.empty or runs["speedup"].isna().all():
        section.missing = _no_runs(runs)
        return section
    section.blocks.append(counter.figure(
        figures.speedup_vs_batch(runs),
        "Measured speedup (generation throughput over the <code>none</code> cell with the same model, "
        "workload and batch size) against batch size; one panel per workload, one line per method and k. "
        "The dotted line is 1 (no gain). " + html.escape(runs_settings(runs))))
    chose = _adaptive_choices(runs)
    if chose is not None:
        section.blocks.append(Block(
            "<p>What each <code>--k adaptive</code> cell chose, over its decoding sequence-steps: the share that "
            "drafted with each proposer (and their mean k), the share that drafted nothing, and how often the "
            "guard followed the model's decision (or plain decoding) rather than a fixed rule.</p>"
            + _table_html(chose)))
    return section


def _adaptive_choices(runs: pd.DataFrame) -> pd.DataFrame | None:
    """A row per measured adaptive cell that recorded its choices (summary.json `adaptive_choices`), else None."""
    if "adaptive_choices" not in runs:
        return None
    rows = []
    for _, run in runs[runs["adaptive_choices"].notna()].sort_values(["workload", "label", "batch_size"]).iterrows():
        c = run["adaptive_choices"]
        drafted = [f"{name} {p['share']:.0%} (k {p['mean_k']:.1f})" for name, p in c.get("proposers", {}).items()
                   if p.get("mean_k") is not None and p.get("share") is not None]
        followed = c.get("guard_followed_model_share")
        rows.append({"workload": run["workload"], "method": run["label"], "batch size": run["batch_size"],
                     "speedup": _x(run["speedup"]), "drafting": ", ".join(drafted) or "none",
                     "not drafting": _share(c.get("no_draft_share")),
                     "guard followed the model": _share(followed),
                     "guard followed plain decoding": _share(c.get("guard_followed_plain_share"))})
    return pd.DataFrame(rows) if rows else None


def _time_breakdown(study: Study, counter) -> Section:
    section = Section("Where the time goes")
    runs = study.runs
    if runs.empty:
        section.missing = "no measured runs (runs/<cell>/summary.json); run `specscope sweep` or `specscope run`."
        return section
    table = metrics.time_per_token(runs)
    if table[[f"ms_{p}" for p in PHASES]].isna().all().all():
        section.missing = "the runs' summary.json files carry no time_breakdown_s."
        return section
    section.blocks.append(counter.figure(
        figures.time_breakdown(table),
        "Time per generated token, split into draft (proposer), verify (target forward), sample "
        "(acceptance / rejection sampling) and overhead (scheduling, cache bookkeeping, host work); one "
        "bar per method, k and batch size (b), one panel per workload. "
        + html.escape(runs_settings(runs))))
    return section


def _memory(study: Study, counter) -> Section:
    section = Section("Memory overhead")
    runs = study.runs
    if runs.empty:
        section.missing = "no measured runs (runs/<cell>/summary.json); run `specscope sweep` or `specscope run`."
        return section
    table = metrics.memory_overhead(runs)
    table = table[table["method"] != BASELINE].dropna(subset=["extra_mb"])
    if table.empty:
        section.missing = ("needs peak_rss_mb for a method and for the `none` cell of the same workload and "
                           "batch size.")
        return section
    section.blocks.append(counter.figure(
        figures.memory_overhead(table),
        "Peak resident memory (RSS) of each method over the <code>none</code> cell with the same workload "
        "and batch size, in MB; bars per batch size (b). "
        + html.escape(runs_settings(runs))))
    shown = table[["workload", "label", "batch_size", "peak_rss_mb", "extra_mb", "extra_pct"]]
    shown = pd.DataFrame({
        "workload": shown["workload"], "method": shown["label"], "batch size": shown["batch_size"],
        "peak RSS (MB)": shown["peak_rss_mb"].map(_num), "over none (MB)": shown["extra_mb"].map(_num),
        "over none": shown["extra_pct"].map(_pct),
    })
    section.blocks.append(Block(_table_html(shown)))
    return section


def _acceptance_by_position(study: Study, counter) -> Section:
    section = Section("Acceptance length by position and request")
    if not study.traces:
        section.missing = _no_traces()
        return section
    for trace in study.traces:
        matrices = {p: metrics.acc_len_matrix(trace, p, figures.HEATMAP_MAX_POSITIONS) for p in trace.proposers}
        longest = max(m.shape[1] for m in matrices.values())
        cut = (f" Positions beyond {figures.HEATMAP_MAX_POSITIONS} are not drawn."
               if longest >= figures.HEATMAP_MAX_POSITIONS else "")
        section.blocks.append(counter.figure(
            figures.acc_heatmap(matrices, trace.k_max),
            "Per-position acceptance trace: acc_len (tokens a step starting at that output position would "
            "commit, lookahead k_max) for every request (rows, longest output first) and output position "
            f"(columns); blank past a request's end; one panel per proposer.{cut} "
            + html.escape(trace_settings(trace))))
        curves = {p: metrics.mean_acc_by_position(trace, p) for p in trace.proposers}
        section.blocks.append(counter.figure(
            figures.acc_by_position(curves),
            "Mean acc_len at each output position, one line per output-length group (requests split into "
            "groups of equal size by output length), smoothed by a centred rolling mean over about 1/50 of "
            "the positions and drawn where at least 20% of the group's requests (and 3) reach the position; "
            "one panel per proposer. " + html.escape(trace_settings(trace))))
    return section


def _request_distributions(study: Study, counter) -> Section:
    section = Section("Per-request mean acceptance length")
    requests = study.requests.dropna(subset=["mean_acc_len"]) if not study.requests.empty else study.requests
    sd_requests = requests[requests["method"] != BASELINE] if not requests.empty else requests
    if not sd_requests.empty:
        sd_requests = sd_requests.assign(
            label=[f"{label} b={b}" for label, b in zip(sd_requests["label"], sd_requests["batch_size"])])
        section.blocks.append(counter.figure(
            figures.acc_boxplots(sd_requests, "label", "mean acceptance length"),
            "Measured: distribution over requests of each request's mean acceptance length (tokens "
            "committed / steps) per method, k and batch size (b); one panel per workload; box = quartiles, "
            "whiskers = 1.5 IQR, triangle = mean. " + html.escape(runs_settings(study.runs))))
    if study.traces:
        table = metrics.trace_requests(study.traces)
        section.blocks.append(counter.figure(
            figures.acc_boxplots(table, "proposer", "mean acc_len over positions"),
            "From traces: distribution over requests of each request's mean per-position acc_len (lookahead "
            "k_max) per proposer; one panel per workload; box = quartiles, whiskers = 1.5 IQR, triangle = "
            "mean. " + html.escape(" ".join(trace_settings(t) for t in study.traces))))
    if not section.blocks:
        section.missing = ("needs runs/<cell>/requests.jsonl with per-step counts of an SD method, or traces; "
                           "run `specscope sweep` or `specscope trace`.")
    return section


def _bleu_overlap(study: Study, counter) -> Section:
    section = Section("Prompt-output overlap and n-gram", intro=(
        "How n-gram drafting compares with the other proposer as the output copies more from the prompt. "
        "Source: traces. Per request, the ratio of n-gram's to the other proposer's tokens committed per "
        "step under the oracle policy (each step proposes exactly acc_len - 1 tokens): n-gram's speedup "
        "relative to the other proposer when a step costs the same whichever proposer drafted. It ignores "
        "draft cost, which favours the other proposer (n-gram drafts almost for free)."))
    pairs = [(t, metrics.proposer_pair(t.proposers)) for t in study.traces]
    usable = [(t, pair) for t, pair in pairs if pair and metrics.is_ngram(pair[0])]
    if not usable:
        section.missing = (_no_traces() if not study.traces else
                           "no trace holds n-gram and another proposer; collect one with both, e.g. "
                           "`specscope trace --proposers ngram,draft`.")
        return section
    for trace, (ngram, other) in usable:
        per_request, per_bin = metrics.bleu_bins(metrics.trace_requests([trace]), ngram, other)
        section.blocks.append(counter.figure(
            figures.bleu_vs_ratio(per_request, per_bin, ngram, other),
            f"{html.escape(ngram)} / {html.escape(other)} oracle tokens per step (log scale; above 1 = "
            "n-gram faster) against BLEU-4 of the output against the prompt, computed on token ids "
            "(sentence BLEU, exp smoothing, brevity penalty); grey points are requests, red the mean per "
            "BLEU bin with its request count. " + html.escape(trace_settings(trace))))
        shown = pd.DataFrame({
            "BLEU-4 bin": per_bin["bin"], "requests": per_bin["requests"],
            "mean ratio": per_bin["mean_ratio"].map(_num), "median ratio": per_bin["median_ratio"].map(_num),
            f"{ngram} wins": per_bin["ngram_wins"].map(lambda v: _pct(100 * v)),
        })
        section.blocks.append(Block(_table_html(shown)))
    return section


def _proposer_difference(study: Study, counter) -> Section:
    section = Section("Per-position difference between two proposers")
    pairs = [(t, metrics.proposer_pair(t.proposers)) for t in study.traces]
    usable = [(t, pair) for t, pair in pairs if pair]
    if not usable:
        section.missing = (_no_traces() if not study.traces else
                           "every trace holds a single proposer; collect one with two, e.g. "
                           "`specscope trace --proposers ngram,draft`.")
        return section
    for trace, (a, b) in usable:
        table = metrics.position_difference(trace, a, b)
        section.blocks.append(counter.figure(
            figures.position_difference(table, a, b),
            f"Left: mean over requests of acc_len[{html.escape(a)}] - acc_len[{html.escape(b)}] at each output "
            "position (above 0: the first proposer commits more there). Right: share of requests where each "
            "proposer's acc_len is strictly longer (ties are neither). Both smoothed by a centred rolling mean "
            "over about 1/50 of the positions, drawn where at least 20% of the requests (and 3) reach the "
            "position. " + html.escape(trace_settings(trace))))
    return section


def _simulated(study: Study, counter) -> Section:
    section = Section("Simulated: oracle and fixed-k against batch size")
    sim = study.simulation
    if sim is None:
        section.missing = _no_simulation()
        return section
    rows = sim[sim["policy_kind"].isin(["fixed", "oracle", "adaptive"]) & sim["proposers"].map(metrics.single_proposer)]
    if rows.empty:
        section.missing = "simulation.csv has no fixed-k or oracle rows for a single proposer."
        return section
    section.blocks.append(counter.figure(
        figures.simulated_speedup(rows),
        "Simulated speedup over autoregressive decoding against batch size, replaying each trace through "
        "the cost model; solid = oracle policy (proposes exactly acc_len - 1: the proposer's upper bound), "
        "dashed = fixed-k, dash-dot = adaptive (k per request and step from its acceptance so far and the "
        "cost model: deployable); one panel per trace. " + html.escape(simulation_settings(study, sim))))
    return section


def _combine(study: Study, counter) -> Section:
    section = Section("Simulated: oracle combine against single-proposer oracles")
    sim = study.simulation
    if sim is None:
        section.missing = _no_simulation()
        return section
    table = metrics.oracle_comparison(sim)
    if table.empty:
        section.missing = ("simulation.csv has no combine rows next to single-proposer oracle rows; simulate a "
                           "trace with two proposers and the combine policy.")
        return section
    section.blocks.append(counter.figure(
        figures.combine_vs_oracles(table),
        "Simulated speedup of each proposer's oracle and of the oracle combine (at every position take the "
        "proposer with the longer acc_len: the bound for choosing a proposer per step), per batch size; one "
        "panel per trace. " + html.escape(simulation_settings(study, sim))))
    return section


def _fidelity(study: Study, runs: pd.DataFrame, counter) -> Section:
    section = Section("Simulator fidelity")
    if runs.empty or runs["speedup"].isna().all():
        section.missing = _no_runs(runs)
        return section
    if study.simulation is None:
        section.missing = _no_simulation()
        return section
    table = metrics.fidelity(runs, study.simulation)
    if table.empty:
        section.missing = ("no measured SD cell has a simulated row of its policy (fixed k, or adaptive) with the "
                           "same workload, proposers and batch size; simulate the traces of the measured workloads "
                           "at the measured k.")
        return section
    mae = float(table["error_pct"].abs().mean())
    section.blocks.append(counter.figure(
        figures.fidelity(table),
        "Simulated (same policy: fixed k with the same k, or adaptive; same proposers, batch size and workload) "
        "against measured speedup, one point per measured cell; the dashed line is a perfect prediction. An adaptive "
        "cell decides under the cost model it ran with (cost_model in its summary.json), the simulation under its own. "
        f"Mean absolute error {mae:.1f}%. "
        + html.escape(runs_settings(runs) + " " + simulation_settings(study, study.simulation))))
    shown = pd.DataFrame({
        "workload": table["workload"],
        "method": table["label"],
        "batch size": table["batch_size"], "measured": table["measured"].map(_x),
        "simulated": table["predicted"].map(_x), "error": table["error_pct"].map(_pct),
    })
    if table["mode"].nunique() > 1:
        shown.insert(3, "simulator mode", table["mode"])
    section.blocks.append(Block(_table_html(shown)))
    return section


def _no_runs(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "no measured runs (runs/<cell>/summary.json); run `specscope sweep` or `specscope run`."
    return "no measured cell has a `none` cell with the same model, workload and batch size to compare with."


def _no_traces() -> str:
    return "no traces (traces/*.jsonl); collect them with `specscope trace` or import SpecDecode-Bench traces."


def _no_simulation() -> str:
    return "no simulation.csv; run `specscope simulate DIR/traces/*.jsonl -o DIR/simulation.csv`."


# ---------------------------------------------------------------------------------------------
# HTML


class _FigureCounter:
    """Numbers figures in page order and renders each into an inline PNG block."""

    def __init__(self):
        self.count = 0

    def figure(self, fig, caption_html: str) -> Block:
        self.count += 1
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
        figures.plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return Block(
            f"<figure><img class='figure' alt='Figure {self.count}' src='data:image/png;base64,{data}'>"
            f"<figcaption><b>Figure {self.count}.</b> {caption_html}</figcaption></figure>",
            is_figure=True,
        )


def _x(value) -> str:
    return "" if pd.isna(value) else f"{value:.2f}x"


def _pct(value) -> str:
    return "" if pd.isna(value) else f"{value:+.1f}%"


def _share(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.0%}"


def _num(value) -> str:
    return "" if pd.isna(value) else f"{value:.2f}"


def _table_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1.5em 0; } img.figure { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.4em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; } th { background: #f3f3f3; }
.missing p { color: #8a5a00; background: #fff8e6; padding: 0.5em 0.8em; border-left: 3px solid #e0a800; }
.settings, .meta { font-size: 0.9em; color: #555; }
"""


def render_html(study: Study, sections: list[Section]) -> str:
    """The whole page as one string."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>specscope report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>specscope report</h1>",
        f"<p class='meta'>Study folder <code>{html.escape(str(study.root))}</code>: {_contents(study)}. "
        f"Written {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by specscope {html.escape(__version__)}.</p>",
    ]
    if study.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in study.notes)
        parts.append(f"<p class='meta'>Notes:</p><ul class='meta'>{items}</ul>")
    missing = [s.title for s in sections if s.missing]
    if missing:
        parts.append(f"<p class='meta'>Not shown for lack of data: {html.escape(', '.join(missing))} "
                     "(see each section).</p>")
    for section in sections:
        css = " class='missing'" if section.missing else ""
        parts.append(f"<section{css}><h2>{html.escape(section.title)}</h2>")
        if section.intro:
            parts.append(f"<p>{section.intro}</p>")
        if section.missing:
            parts.append(f"<p>Not shown: {html.escape(section.missing)}</p>")
        parts.extend(block.html for block in section.blocks)
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _contents(study: Study) -> str:
    parts = [f"{len(study.runs)} measured cells", f"{len(study.traces)} traces"]
    parts.append(f"simulation.csv with {len(study.simulation)} rows" if study.simulation is not None
                 else "no simulation.csv")
    if study.profile is not None:
        parts.append(f"profile.csv with {len(study.profile)} rows")
    parts.append("cost_model.toml" if study.cost_model is not None else "no cost_model.toml")
    return ", ".join(parts)
