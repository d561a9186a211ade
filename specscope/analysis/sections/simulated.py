"""Evidence from the simulation: bounds and fixed k by batch size, the oracle combine, the headroom left by the best
measured method, and how well the simulator predicts the measured cells."""

from __future__ import annotations

import html

import pandas as pd

from specscope.analysis import figures, metrics
from specscope.settings import BASELINE
from specscope.analysis.page import ReportContext, Section, pct, share, x
from specscope.analysis.sections.common import no_runs, no_simulation, runs_settings, simulation_settings, span


def simulated_section(ctx: ReportContext) -> Section:
    section = Section("Simulated: oracle and fixed-k against batch size")
    sim = ctx.study.simulation
    if sim is None:
        section.missing = no_simulation()
        return section
    rows = sim[sim["policy_kind"].isin(["fixed", "oracle", "adaptive"]) & sim["proposers"].map(metrics.single_proposer)]
    if rows.empty:
        section.missing = "simulation.csv has no fixed-k or oracle rows for a single proposer."
        return section
    section.blocks.append(ctx.counter.figure(
        figures.simulated_speedup(rows),
        "Simulated speedup over plain decoding against batch size, replaying each trace through the cost model; "
        "solid = oracle policy (proposes exactly acceptance length - 1: the proposer's upper bound), dashed = "
        "fixed k, dash-dot = adaptive (k per request and step from its acceptance so far and the cost model: "
        "deployable); one panel per trace. " + html.escape(simulation_settings(ctx.study, sim))))
    note = resampled_rows_note(sim)
    if note:
        section.paragraph(html.escape(note))
    return section


def resampled_rows_note(sim: pd.DataFrame) -> str:
    """Which traces' batch sizes rest on fewer distinct requests than the batch (serve mode resampled them)."""
    if "distinct_requests" not in sim.columns:
        return ""
    distinct = pd.to_numeric(sim["distinct_requests"], errors="coerce")
    marked = sim[(distinct < sim["batch_size"]) & (sim["mode"] != "paper")]
    if marked.empty:
        return ""
    parts = []
    for trace, rows in marked.groupby("trace"):
        sizes = ", ".join(str(b) for b in sorted(rows["batch_size"].unique()))
        parts.append(f"{trace} at batch {sizes} (from {int(pd.to_numeric(rows['distinct_requests']).min())} requests)")
    return ("Resampled: these rows rest on fewer distinct requests than their batch size — the simulator kept the "
            "batch full with requests drawn again from the trace (simulation.csv's distinct_requests): "
            + "; ".join(parts) + ".")


def combine_section(ctx: ReportContext) -> Section:
    section = Section("Simulated: oracle combine against single-proposer oracles")
    sim = ctx.study.simulation
    if sim is None:
        section.missing = no_simulation()
        return section
    table = metrics.oracle_comparison(sim)
    if table.empty:
        section.missing = ("simulation.csv has no combine rows next to single-proposer oracle rows; simulate a "
                           "trace with two proposers and the combine policy.")
        return section
    section.blocks.append(ctx.counter.figure(
        figures.combine_vs_oracles(table),
        "Simulated speedup of each proposer's oracle and of the oracle combine (at every position take the "
        "proposer with the longer acceptance length: the bound for choosing a proposer per step), per batch size; "
        "one panel per trace. " + html.escape(simulation_settings(ctx.study, sim))))
    return section


def headroom_section(ctx: ReportContext) -> Section:
    section = Section("Best measured against the oracle bound", anchor="headroom", intro=(
        "For each workload and batch size: the measured method and k with the highest speedup "
        "(<code>none</code> competes, so it is the answer when speculation does not pay; a cell measured several "
        "times shows the median of its repeats), the oracle bound (best simulated oracle or oracle-combine speedup "
        "for that workload and batch size), the gap: how much of the bound the best measured method leaves on the "
        "table, (bound - best) / bound, and beside it the model's error: the simulator's mean error on this "
        "workload's measured cells (fidelity) and the cost model's held-out fit error. A gap smaller than the "
        "model's error is <i>within model error</i>; a negative gap means the simulation underestimates this "
        "machine. Whether to enable speculation at all is the <a href='#verdict'>Verdict</a>'s answer."))
    runs = ctx.runs
    if not ctx.has_speedups:
        section.missing = no_runs(runs)
        return section
    fidelity = metrics.fidelity(runs, ctx.study.simulation, ctx.study.twins)
    table = metrics.recommendations(runs, ctx.study.simulation, fidelity, metrics.fit_errors(ctx.study.cost_model))
    shown = pd.DataFrame({
        "workload": table["workload"], "batch size": table["batch_size"],
        "best method": table["label"], "speedup": table["speedup"].map(x),
        "oracle bound": [_bound(b, resampled, distinct) for b, resampled, distinct
                         in zip(table["oracle_speedup"], table["bound_resampled"], table["bound_distinct"])],
        "bound from": table["bound_from"].fillna(""),
        "gap": [_gap(g, within) for g, within in zip(table["gap_pct"], table["within_error"])],
        "model error": [_model_error(f, n, e) for f, n, e in
                        zip(table["fidelity_error_pct"], table["fidelity_cells"], table["fit_error_pct"])],
    })
    if table["model"].nunique() > 1:
        shown.insert(0, "model", table["model"])
    section.table(shown)
    settings = runs_settings(runs)
    if ctx.study.simulation is None:
        settings += " No simulation.csv: the oracle bound is not available (" + no_simulation() + ")"
    else:
        settings += " " + simulation_settings(ctx.study, ctx.study.simulation)
        if table["oracle_speedup"].isna().any():
            settings += (" A blank oracle bound: simulation.csv has no oracle row for that workload and batch "
                         "size (simulate a trace of that workload at that batch size).")
    for note in (resampled_bounds_note(table), measured_adaptive_note(runs), adaptive_note(ctx.study.simulation)):
        if note:
            section.paragraph(html.escape(note))
    section.paragraph(html.escape(settings), css="settings")
    return section


def _bound(bound, resampled, distinct) -> str:
    if pd.isna(bound):
        return ""
    mark = f" (resampled from {int(distinct)} requests)" if bool(resampled) and not pd.isna(distinct) else ""
    return x(bound) + mark


def _gap(gap_pct, within) -> str:
    if pd.isna(gap_pct):
        return ""
    return pct(gap_pct) + (" (within model error)" if bool(within) else "")


def _model_error(fidelity_pct, cells, fit_pct) -> str:
    parts = []
    if not pd.isna(fidelity_pct):
        parts.append(f"fidelity ±{fidelity_pct:.1f}% ({int(cells)} cells)")
    if not pd.isna(fit_pct):
        parts.append(f"fit ±{fit_pct:.1f}%")
    return "; ".join(parts)


def resampled_bounds_note(table: pd.DataFrame) -> str:
    """Bounds that rest on fewer distinct requests than their batch size (serve mode resampled them)."""
    marked = table[table["bound_resampled"].fillna(False).astype(bool)]
    if marked.empty:
        return ""
    where = ", ".join(f"{w} batch {b}" for w, b in zip(marked["workload"], marked["batch_size"]))
    return (f"Marked bounds rest on fewer distinct requests than their batch size: the simulator resampled the "
            f"trace's requests (with replacement) to keep the batch full ({where}); trace more prompts for a bound "
            "of that many distinct requests.")


def measured_adaptive_note(runs: pd.DataFrame) -> str:
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


def adaptive_note(sim: pd.DataFrame | None) -> str:
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
        clauses.append(f"{workload} {proposers} ({mode}) at {where}: {span([a for _, a, _ in cells])} vs "
                       f"{span([f for _, _, f in cells])}")
    return (f"Simulated adaptive beats the best fixed k of its proposers (plain decoding included) in "
            f"{sum(map(len, wins.values()))} of {len(adaptive)} cells: " + "; ".join(clauses) + ".")


def fidelity_section(ctx: ReportContext) -> Section:
    section = Section("Simulator fidelity")
    runs, study = ctx.runs, ctx.study
    if not ctx.has_speedups:
        section.missing = no_runs(runs)
        return section
    if study.simulation is None and study.twins is None:
        section.missing = no_simulation()
        return section
    table = metrics.fidelity(runs, study.simulation, study.twins)
    if table.empty:
        section.missing = ("no measured SD cell has a simulated twin (twins.csv) or a simulated row of its policy "
                           "(fixed k, or adaptive) with the same workload, proposers and batch size; simulate the "
                           "traces of the measured workloads at the measured k.")
        return section
    errors = table["error_pct"].abs()
    mae, worst = float(errors.mean()), float(errors.max())
    twins = study.twins is not None and not study.twins.empty
    matched = ("Each cell against its simulated twin: the trace of the same requests replayed at the cell's batch "
               "size with its policy (twins.csv). " if twins else
               "Simulated (same policy: fixed k with the same k, or adaptive; same proposers, batch size and "
               "workload) against measured speedup. ")
    section.blocks.append(ctx.counter.figure(
        figures.fidelity(table),
        matched + "One point per measured cell (the median of its repeats; colour = method, marker = workload), one "
        "panel per batch size; the dashed line is a perfect prediction. An adaptive cell decides under the cost "
        "model it ran with (cost_model in its summary.json), the simulation under its own. "
        f"Mean absolute error {mae:.1f}%, largest {worst:.1f}% over {len(table)} cells. " + noise_floor(table)
        + html.escape(runs_settings(runs) + (" " + simulation_settings(study, study.simulation)
                                             if study.simulation is not None else ""))))
    shown = pd.DataFrame({
        "workload": table["workload"], "method": table["label"],
        "batch size": table["batch_size"], "measured": table["measured"].map(x),
        "spread": table["spread_pct"].map(lambda v: "" if pd.isna(v) else f"±{v:.1f}%"),
        "simulated": table["predicted"].map(x), "error": table["error_pct"].map(pct),
        "draft share measured / simulated": [_shares(m, p) for m, p in
                                             zip(table["measured_draft_share"], table["predicted_draft_share"])],
        "machine": table["busy"].map(lambda b: "busy" if bool(b) else ""),
    })
    if table["mode"].nunique() > 1:
        shown.insert(3, "simulator mode", table["mode"])
    section.table(shown)
    busy = int(table["busy"].fillna(False).astype(bool).sum())
    if busy:
        section.paragraph(f"Warning: {busy} of {len(table)} cells ran on a busy machine (other processes took CPU "
                          "time during the run); their measured speedups, and so their errors, are less certain.")
    return section


def noise_floor(table: pd.DataFrame) -> str:
    """The measurement's own uncertainty next to the simulator's error: the repeats' mean spread and how many cells'
    errors lie within their own spread ("" without repeats). A simulator cannot match a measurement closer than
    the measurement matches itself."""
    spread = table["spread_pct"].dropna()
    if spread.empty:
        return ""
    within = int((table["error_pct"].abs() <= table["spread_pct"]).sum())
    return (f"The measurement's own noise: its repeats differ by ±{spread.mean():.1f}% on average (±{spread.max():.1f}% "
            f"at most); {within} of {len(table)} errors are within their cell's spread. ")


def _shares(measured, predicted) -> str:
    if pd.isna(measured) and pd.isna(predicted):
        return ""
    return f"{share(measured) or '?'} / {share(predicted) or '?'}"
