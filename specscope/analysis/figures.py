"""The study's figures: one function per figure, tables in, a matplotlib `Figure` out.

Uses the non-interactive Agg backend (no display needed). Functions take the tables that `metrics` (and
`latency`, `breakeven`) compute and only draw; captions are written by `report`. Panels are one per workload
(or per trace, proposer or batch size) so that no figure mixes settings that should not be compared.

Every figure is drawn to be read at the report page's width without scaling: at most MAX_FIG_W inches wide
at `page.FIGURE_DPI`, no text smaller than MIN_FONT points, legends below the panels (never over data),
batch sizes in numeric order, log axes with several labelled ticks and integer axes where the quantity is
a count.
"""

from __future__ import annotations

import functools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, NullLocator  # noqa: E402

from specscope.analysis.servers import closed_loop_cells  # noqa: E402
from specscope.formats.summary import PHASES  # noqa: E402

PHASE_COLOURS = {"draft": "#4c72b0", "verify": "#dd8452", "sample": "#55a868", "overhead": "#8c8c8c"}
PHASE_WORDS = {"draft": "draft (proposer)", "verify": "verify (target forward)", "sample": "sample (accept / reject)",
               "overhead": "overhead (scheduling, cache, host)"}
MAX_FIG_W = 11.5  # inches: the report page's width at page.FIGURE_DPI (the page is 1,200 px wide at most)
MIN_FONT = 10  # points; at 100 dpi a 10 pt glyph is 14 px tall
PANEL_W, PANEL_H = 3.8, 3.2
MAX_COLS = 3
HEATMAP_MAX_POSITIONS = 1024
MARKERS = "os^DvP*Xph"
STYLE = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10,
    "legend.fontsize": 10, "legend.title_fontsize": 10, "figure.titlesize": 12,
}
RATIO_TICKS = (0.05, 0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 50.0)


def styled(draw):
    """Draw under the report's font sizes (STYLE), leaving matplotlib's global settings alone."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)
    return wrapper


def _panels(n: int, width: float = PANEL_W, height: float = PANEL_H, sharey: bool = False, cols: int | None = None,
            sharex: bool = False):
    """A figure with `n` panels in rows of at most `cols` (MAX_COLS), no wider than MAX_FIG_W; returns (figure,
    flat list of axes). Constrained layout, so a legend can sit outside the panels."""
    cols = min(n, cols or MAX_COLS)
    rows = math.ceil(n / cols)
    width = min(width, MAX_FIG_W / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=sharey,
                             sharex=sharex, layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend_below(fig: Figure, axes, title: str | None = None, handles=None, labels=None) -> None:
    """One legend for the whole figure, below its panels; entries gathered from every panel, each label once."""
    if handles is None:
        seen: dict[str, object] = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(label, handle)
        labels, handles = list(seen), list(seen.values())
    if not handles:
        return
    width_in = fig.get_size_inches()[0]
    longest = max(len(str(label)) for label in labels)
    ncols = max(1, min(len(labels), int(width_in * 100 / (longest * 7.5 + 50))))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False, title=title)


def _colours(names) -> dict:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _batch_axis(ax, batch_sizes) -> None:
    """Batch sizes on a log-2 axis with their values (only) as ticks."""
    sizes = sorted(set(int(b) for b in batch_sizes))
    if len(sizes) > 1 and sizes[0] > 0:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(b) for b in sizes])
    ax.set_xlabel("batch size")


def ratio_axis(ax, values, axis: str = "y") -> None:
    """A log axis for ratios (speedups, a / b) with at least three labelled ticks from RATIO_TICKS."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v) and v > 0], dtype=float)
    lo, hi = (values.min(), values.max()) if len(values) else (1.0, 1.0)
    lo, hi = min(lo, 1.0), max(hi, 1.0)
    inside = [t for t in RATIO_TICKS if lo / 1.05 <= t <= hi * 1.05]
    below = [t for t in RATIO_TICKS if t < lo / 1.05]
    above = [t for t in RATIO_TICKS if t > hi * 1.05]
    while len(inside) < 3 and (below or above):
        if above and (not below or len(inside) % 2 == 0):
            inside.append(above.pop(0))
        else:
            inside.insert(0, below.pop())
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(FixedLocator(inside))
    target.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{t:g}" for t in inside]))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
    (ax.set_ylim if axis == "y" else ax.set_xlim)(min(inside[0], lo) / 1.08, max(inside[-1], hi) * 1.08)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling mean ignoring NaN (window 1 = unchanged)."""
    if window <= 1:
        return values
    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()


def smoothing_window(width: int) -> int:
    """Rolling-mean window for per-position curves: about 1/50 of the positions shown."""
    return max(1, width // 50)


def method_order(labels) -> list[str]:
    """Method labels in reading order: `none` first, then by name."""
    return sorted(set(labels), key=lambda label: (label != "none", str(label)))


# ---------------------------------------------------------------------------------------------
# Measured runs


@styled
def speedup_vs_batch(runs: pd.DataFrame) -> Figure:
    """Measured speedup against batch size: a panel per workload, a line per method and k."""
    workloads = sorted(runs["workload"].unique())
    fig, axes = _panels(len(workloads))
    colours = _colours(method_order(runs["label"]))
    for ax, workload in zip(axes, workloads):
        sub = runs[runs["workload"] == workload].dropna(subset=["speedup"])
        for label in method_order(sub["label"]):
            line = sub[sub["label"] == label].groupby("batch_size")["speedup"].mean()
            ax.plot(line.index, line.to_numpy(), marker="o", label=label, color=colours[label])
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        _batch_axis(ax, sub["batch_size"])
        ax.set_ylabel("speedup over none")
        ax.set_title(workload)
    _legend_below(fig, axes)
    return fig


@styled
def throughput_vs_latency(table: pd.DataFrame) -> Figure:
    """Throughput against p50 per-token latency, a point per batch size (marker) and a line per method (colour):
    a panel per workload. Under a latency limit, the best choice is the highest point left of it."""
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads), height=3.4)
    colours = _colours(method_order(table["label"]))
    batches = sorted(int(b) for b in table["batch_size"].unique())
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(batches)}
    for ax, workload in zip(axes, workloads):
        sub = table[table["workload"] == workload].dropna(subset=["per_token_s_p50", "throughput_tok_s"])
        for label in method_order(sub["label"]):
            line = sub[sub["label"] == label].sort_values("batch_size")
            x, y = 1000.0 * line["per_token_s_p50"].to_numpy(), line["throughput_tok_s"].to_numpy()
            ax.plot(x, y, color=colours[label], linewidth=1.2, alpha=0.8)
            for xi, yi, b in zip(x, y, line["batch_size"]):
                ax.plot([xi], [yi], marker=markers[int(b)], color=colours[label], markersize=7, linestyle="none")
        ax.set_xlabel("per-token latency, p50 (ms)")
        ax.set_ylabel("throughput (tokens/s)")
        ax.set_title(workload)
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
    handles = [Line2D([], [], color=colours[label], linewidth=2) for label in colours]
    handles += [Line2D([], [], marker=markers[b], color="#555555", linestyle="none", markersize=7) for b in batches]
    labels = list(colours) + [f"batch {b}" for b in batches]
    _legend_below(fig, axes, handles=handles, labels=labels)
    return fig


@styled
def break_even(costs: pd.DataFrame, acceptance: pd.DataFrame) -> Figure:
    """Step time relative to a plain step against k (= the acceptance length needed to break even), a panel per
    profiled batch size: verify alone, verify plus each proposer's drafting; measured acceptance lengths as points."""
    batches = sorted(int(b) for b in costs["batch_size"].unique())
    fig, axes = _panels(len(batches), height=3.6, sharey=True)
    proposers = [p for p in costs["proposer"].unique() if p != "verify only"]
    colours = _colours(sorted(set(proposers) | set(acceptance["method"].unique())))
    workloads = sorted(acceptance["workload"].unique())
    markers = {w: MARKERS[i % len(MARKERS)] for i, w in enumerate(workloads)}
    kmax = int(costs["k"].max())
    for ax, batch in zip(axes, batches):
        here = costs[costs["batch_size"] == batch]
        ks = np.arange(0, kmax + 1)
        ax.plot(ks, ks + 1, color="#bbbbbb", linestyle=":", linewidth=1.5, label="k + 1: the most a step can commit")
        verify = here[here["proposer"] == "verify only"]
        ax.plot(verify["k"], verify["break_even"], color="black", linewidth=2, marker=".",
                label="break-even: verify only (a free proposer)")
        for proposer in sorted(proposers):
            line = here[here["proposer"] == proposer]
            ax.plot(line["k"], line["break_even"], color=colours[proposer], linewidth=1.5, linestyle="--",
                    label=f"break-even: verify + {proposer} drafting")
        points = acceptance[acceptance["batch_size"] == batch]
        for _, row in points.iterrows():
            ax.plot([row["k"]], [row["mean_acc_len"]], marker=markers[row["workload"]], color=colours[row["method"]],
                    markersize=8, markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
        ax.set_title(f"batch {batch}")
        ax.set_xlabel("draft tokens per step (k)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(-0.2, kmax + 0.2)
        ax.grid(True, axis="y", color="#eeeeee")
    axes[0].set_ylabel("break-even acceptance length\n(= step time / plain step)")
    handles, labels = axes[0].get_legend_handles_labels()
    for proposer in sorted(set(acceptance["method"].unique())):
        handles.append(Line2D([], [], marker="o", color=colours[proposer], linestyle="none", markersize=8,
                              markeredgecolor="black", markeredgewidth=0.6))
        labels.append(f"measured: {proposer}")
    for workload in workloads:
        handles.append(Line2D([], [], marker=markers[workload], color="#888888", linestyle="none", markersize=8))
        labels.append(workload)
    _legend_below(fig, axes, handles=handles, labels=labels)
    return fig


@styled
def time_breakdown(table: pd.DataFrame) -> Figure:
    """Horizontal stacked bars of ms per generated token by phase: a row of panels per workload, a column per batch
    size, a bar per method."""
    workloads = sorted(table["workload"].unique())
    batches = sorted(int(b) for b in table["batch_size"].unique())
    labels = method_order(table["label"])
    height = 0.9 + 0.32 * len(labels)
    fig, grid = plt.subplots(len(workloads), len(batches), figsize=(MAX_FIG_W, height * len(workloads) + 0.6),
                             squeeze=False, sharey=True, sharex="col", layout="constrained")
    for i, workload in enumerate(workloads):
        for j, batch in enumerate(batches):
            ax = grid[i][j]
            sub = table[(table["workload"] == workload) & (table["batch_size"] == batch)].set_index("label")
            y = np.arange(len(labels))
            left = np.zeros(len(labels))
            for phase in PHASES:
                values = sub[f"ms_{phase}"].reindex(labels).fillna(0).to_numpy() if len(sub) else np.zeros(len(labels))
                ax.barh(y, values, left=left, color=PHASE_COLOURS[phase], label=PHASE_WORDS[phase], height=0.7)
                left += values
            ax.set_yticks(y)
            ax.set_yticklabels(labels)
            ax.set_title(f"{workload}, batch {batch}")
            if i == len(workloads) - 1:
                ax.set_xlabel("ms per generated token")
    grid[0][0].invert_yaxis()  # the first method on top (the y axes are shared)
    _legend_below(fig, [grid[0][0]])
    return fig


@styled
def memory_overhead(table: pd.DataFrame) -> Figure:
    """Extra peak RSS over `none` (MB): a panel per workload, bars per method and batch size."""
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads), height=3.6)
    batches = sorted(int(b) for b in table["batch_size"].unique())
    colours = _colours(batches)
    for ax, workload in zip(axes, workloads):
        sub = table[(table["workload"] == workload)].dropna(subset=["extra_mb"])
        pivot = sub.pivot_table(index="label", columns="batch_size", values="extra_mb", aggfunc="mean")
        pivot = pivot.reindex(index=method_order(pivot.index), columns=[b for b in batches if b in pivot.columns])
        width = 0.8 / max(1, len(pivot.columns))
        x = np.arange(len(pivot.index))
        for j, batch in enumerate(pivot.columns):
            ax.bar(x + j * width - 0.4 + width / 2, pivot[batch].to_numpy(), width, label=f"batch {batch}",
                   color=colours[batch])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(pivot.index, rotation=30, ha="right")
        ax.set_ylabel("RSS over none (MB)")
        ax.set_title(workload)
    _legend_below(fig, axes)
    return fig


@styled
def acc_boxplots(table: pd.DataFrame, group: str, ylabel: str) -> Figure:
    """Box plots of per-request mean acceptance length: a panel per workload, a box per `group` (traces: a proposer)."""
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads), sharey=True)
    for ax, workload in zip(axes, workloads):
        sub = table[table["workload"] == workload].dropna(subset=["mean_acc_len"])
        names = sorted(sub[group].unique())
        data = [sub.loc[sub[group] == n, "mean_acc_len"].to_numpy() for n in names]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(np.arange(1, len(names) + 1))
        ax.set_xticklabels(names, rotation=30 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center")
        ax.set_title(workload)
    axes[0].set_ylabel(ylabel)
    return fig


@styled
def measured_acc_boxplots(table: pd.DataFrame, ylabel: str) -> Figure:
    """Horizontal box plots of each request's mean acceptance length: a row of panels per workload, a column per batch
    size, a box per method."""
    workloads = sorted(table["workload"].unique())
    batches = sorted(int(b) for b in table["batch_size"].unique())
    labels = method_order(table["label"])
    height = 0.9 + 0.34 * len(labels)
    fig, grid = plt.subplots(len(workloads), len(batches), figsize=(MAX_FIG_W, height * len(workloads)),
                             squeeze=False, sharey=True, sharex=True, layout="constrained")
    for i, workload in enumerate(workloads):
        for j, batch in enumerate(batches):
            ax = grid[i][j]
            sub = table[(table["workload"] == workload) & (table["batch_size"] == batch)]
            data = [sub.loc[sub["label"] == label, "mean_acc_len"].dropna().to_numpy() for label in labels]
            positions = [p for p, d in zip(range(1, len(labels) + 1), data) if len(d)]
            if positions:
                ax.boxplot([d for d in data if len(d)], positions=positions, orientation="horizontal", showmeans=True, widths=0.6)
            ax.set_yticks(np.arange(1, len(labels) + 1))
            ax.set_yticklabels(labels)
            ax.set_ylim(len(labels) + 0.5, 0.5)
            ax.set_title(f"{workload}, batch {batch}")
            if i == len(workloads) - 1:
                ax.set_xlabel(ylabel)
    return fig


@styled
def fidelity(table: pd.DataFrame) -> Figure:
    """Simulated against measured speedup, a panel per batch size, a colour per method and a marker per workload, with
    the y = x line; the values are in the table under the figure."""
    batches = sorted(int(b) for b in table["batch_size"].unique())
    fig, axes = _panels(len(batches), height=3.6, sharey=True)
    several_modes = table["mode"].nunique() > 1
    series = table.assign(series=[f"{label} ({mode} mode)" if several_modes else label
                                  for label, mode in zip(table["label"], table["mode"])])
    colours = _colours(method_order(series["series"]))
    workloads = sorted(table["workload"].unique())
    markers = {w: MARKERS[i % len(MARKERS)] for i, w in enumerate(workloads)}
    values = pd.concat([table["measured"], table["predicted"], pd.Series([1.0])])
    lo, hi = float(values.min()) * 0.95, float(values.max()) * 1.05
    for ax, batch in zip(axes, batches):
        sub = series[series["batch_size"] == batch]
        for _, row in sub.iterrows():
            ax.plot([row["measured"]], [row["predicted"]], marker=markers[row["workload"]], linestyle="none",
                    color=colours[row["series"]], markersize=8, markeredgecolor="black", markeredgewidth=0.5)
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"batch {batch}")
        ax.set_xlabel("measured speedup")
    axes[0].set_ylabel("simulated speedup")
    handles = [Line2D([], [], marker="o", color=c, linestyle="none", markersize=8) for c in colours.values()]
    handles += [Line2D([], [], marker=markers[w], color="#888888", linestyle="none", markersize=8) for w in workloads]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=0.8))
    _legend_below(fig, axes, handles=handles, labels=list(colours) + workloads + ["simulated = measured"])
    return fig


@styled
def acc_heatmap(matrices: dict[str, np.ndarray], k_max: int | None) -> Figure:
    """acc_len per output position (x) and request (y, numbered from 1, longest first): a panel per proposer."""
    fig, axes = _panels(len(matrices), width=MAX_FIG_W / 2, height=4.0)
    vmax = (k_max + 1) if k_max else max(np.nanmax(m) for m in matrices.values())
    for ax, (proposer, matrix) in zip(axes, matrices.items()):
        n, width = matrix.shape
        image = ax.imshow(np.ma.masked_invalid(matrix), aspect="auto", interpolation="nearest", cmap="viridis",
                          vmin=1, vmax=vmax, extent=(-0.5, width - 0.5, n + 0.5, 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yticks(np.unique(np.linspace(1, n, min(n, 7)).round().astype(int)))  # request numbers 1..n
        ax.set_xlabel("output position")
        ax.set_ylabel("request (longest first)")
        ax.set_title(proposer)
        fig.colorbar(image, ax=ax, label="acceptance length")
    return fig


@styled
def acc_by_position(curves: dict[str, pd.DataFrame]) -> Figure:
    """Mean acc_len per output position, a line per output-length group: a panel per proposer."""
    fig, axes = _panels(len(curves), width=MAX_FIG_W / 2, sharey=True)
    for ax, (proposer, table) in zip(axes, curves.items()):
        for group, line in table.groupby("group", sort=False):
            values = line["mean_acc_len"].to_numpy()
            ax.plot(line["position"], _smooth(values, smoothing_window(len(values))), label=group, linewidth=1.4)
        ax.set_xlabel("output position")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(proposer)
    axes[0].set_ylabel("mean acceptance length")
    _legend_below(fig, axes, title="output length group")
    return fig


@styled
def position_difference(table: pd.DataFrame, a: str, b: str) -> Figure:
    """Mean acc_len[a] - acc_len[b] per position (left) and the share of requests each wins (right)."""
    fig, (left, right) = _panels(2, width=MAX_FIG_W / 2)
    window = smoothing_window(len(table))
    left.plot(table["position"], _smooth(table["mean_diff"].to_numpy(), window), color="#4c72b0")
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xlabel("output position")
    left.set_ylabel(f"mean acceptance length:\n{a} - {b}")
    right.plot(table["position"], _smooth(table["a_wins"].to_numpy(), window), label=f"{a} longer")
    right.plot(table["position"], _smooth(table["b_wins"].to_numpy(), window), label=f"{b} longer")
    right.set_ylim(0, 1)
    right.set_xlabel("output position")
    right.set_ylabel("share of requests")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_below(fig, [right])
    return fig


@styled
def bleu_vs_ratio(per_request: pd.DataFrame, per_bin: pd.DataFrame, ngram: str, other: str) -> Figure:
    """Per-request n-gram/other oracle throughput ratio against BLEU-4 overlap, with bin means."""
    fig, (ax,) = _panels(1, width=8.0, height=4.2)
    ax.scatter(per_request["bleu4"], per_request["ratio"], s=16, alpha=0.5, color="#8c8c8c", label="a request")
    filled = per_bin.dropna(subset=["mean_ratio"])
    centres = (filled["lo"] + filled["hi"]) / 2
    ax.plot(centres, filled["mean_ratio"], marker="o", color="#c44e52", label="mean of the bin (n = requests)")
    for x, y, n in zip(centres, filled["mean_ratio"], filled["requests"]):
        ax.annotate(f"n={int(n)}", (x, y), xytext=(0, 8), textcoords="offset points", ha="center", fontsize=MIN_FONT)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ratio_axis(ax, pd.concat([per_request["ratio"], filled["mean_ratio"]]))
    ax.set_xlim(-0.02, 1.02)
    ax.set_xticks(list(per_bin["lo"]) + [float(per_bin["hi"].iloc[-1])])
    ax.set_xlabel("BLEU-4 of the output against the prompt (token ids)")
    ax.set_ylabel(f"{ngram} / {other}\noracle tokens per step")
    _legend_below(fig, [ax])
    return fig


# ---------------------------------------------------------------------------------------------
# Simulation


@styled
def simulated_speedup(simulation: pd.DataFrame) -> Figure:
    """Simulated speedup against batch size: a panel per trace, a colour per proposer, a marker per policy;
    oracle solid, fixed-k dashed, adaptive dash-dot."""
    traces = sorted(simulation["trace"].unique())
    fig, axes = _panels(len(traces), height=3.6, sharey=True)
    styles = {"oracle": "-", "fixed": "--", "combine": "-.", "adaptive": "-."}
    colours = _colours(sorted(simulation["proposers"].unique()))
    policies = sorted(simulation["policy"].unique())
    markers = {p: MARKERS[i % len(MARKERS)] for i, p in enumerate(policies)}
    for ax, trace in zip(axes, traces):
        sub = simulation[simulation["trace"] == trace].dropna(subset=["speedup"])
        several_modes = sub["mode"].nunique() > 1
        for (kind, proposers, policy, mode), line in sub.groupby(["policy_kind", "proposers", "policy", "mode"]):
            line = line.groupby("batch_size")["speedup"].mean()
            label = f"{policy} {proposers}" + (f" ({mode})" if several_modes else "")
            ax.plot(line.index, line.to_numpy(), styles.get(kind, ":"), marker=markers[policy], markersize=5,
                    color=colours[proposers], label=label)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        _batch_axis(ax, sub["batch_size"])
        ax.tick_params(axis="x", labelrotation=0)
        ax.set_title(trace)
    axes[0].set_ylabel("simulated speedup")
    _legend_below(fig, axes)
    return fig


@styled
def combine_vs_oracles(table: pd.DataFrame) -> Figure:
    """Bars of simulated speedup per batch size: each single-proposer oracle and the combine oracle."""
    traces = sorted(table["trace"].unique())
    fig, axes = _panels(len(traces), sharey=True)
    series_names = sorted(table["series"].unique())
    colours = _colours(series_names)
    for ax, trace in zip(axes, traces):
        sub = table[table["trace"] == trace]
        pivot = sub.pivot_table(index="batch_size", columns="series", values="speedup", aggfunc="mean").sort_index()
        width = 0.8 / max(1, len(pivot.columns))
        x = np.arange(len(pivot.index))
        for j, series in enumerate(pivot.columns):
            ax.bar(x + j * width - 0.4 + width / 2, pivot[series].to_numpy(), width, label=series,
                   color=colours[series])
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        ax.set_xticks(x)
        ax.set_xticklabels([str(b) for b in pivot.index])
        ax.set_xlabel("batch size")
        ax.set_title(trace)
    axes[0].set_ylabel("simulated speedup")
    _legend_below(fig, axes)
    return fig


@styled
def roofline(target, title: str, batch_sizes, context: float, verify_k: int) -> Figure:
    """An analytic (roofline) target's step time against tokens per step, with its weight-read and matmul parts,
    the memory- and compute-bound regions, and each batch size marked at a plain step and at a k = `verify_k`
    verification (KV = batch size x `context`)."""
    sizes = sorted(int(b) for b in batch_sizes) or [1]
    top = max(4096, verify_k * 4 * sizes[-1])
    n = np.unique(np.round(np.geomspace(1, top, 200)))
    fig, axes = _panels(1, width=MAX_FIG_W * 0.75, height=4.6)
    ax = axes[0]
    ms = 1e3
    ax.plot(n, target(n, 0.0) * ms, color="black", linewidth=2, label="step time, KV = 0")
    ax.plot(n, np.full_like(n, target.weights_s() * ms), "--", color="#4c72b0", label="reading the weights")
    ax.plot(n, target.matmul_s(n) * ms, "--", color="#dd8452", label="matmul arithmetic")
    knee = target.compute_bound_from()
    ax.axvspan(1, min(knee, top), color="#4c72b0", alpha=0.08, label="memory-bound (weights dominate)")
    if knee < top:
        ax.axvspan(knee, top, color="#dd8452", alpha=0.08, label="compute-bound (matmuls dominate)")
    for b in sizes:
        kv = b * context
        ax.plot([b], [target(b, kv) * ms], "o", color="#55a868", markersize=5)
        ax.plot([b * (verify_k + 1)], [target(b * (verify_k + 1), kv) * ms], "s", color="#c44e52", markersize=4)
        ax.annotate(f"B={b}", (b, target(b, kv) * ms), textcoords="offset points", xytext=(0, 7), ha="center",
                    fontsize=MIN_FONT)
    ax.plot([], [], "o", color="#55a868", label="batch size B: plain step (B tokens)")
    ax.plot([], [], "s", color="#c44e52", label=f"batch size B: k = {verify_k} verification ({verify_k + 1}B tokens)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, top)
    ax.set_xlabel("tokens per step (all sequences of the batch)")
    ax.set_ylabel("target step time (ms)")
    ax.set_title(title)
    _legend_below(fig, axes)
    return fig


# ---------------------------------------------------------------------------------------------
# Server cells (`specscope bench`; tables from analysis/servers.py)


SERVER_LATENCY_PANELS = (("ttft", "time to first token (ms)"), ("itl", "inter-token latency (ms)"),
                  ("e2e", "end-to-end latency (ms)"))
SERVER_PERCENTILE_STYLES = (("p50", "-"), ("p90", "--"), ("p99", ":"))


def _concurrency_axis(ax, values) -> None:
    values = sorted(set(int(v) for v in values))
    if len(values) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    ax.set_xticklabels([str(v) for v in values])
    ax.set_xlabel("concurrency (requests in flight) / engine batch size")


@styled
def throughput_vs_concurrency(servers: pd.DataFrame, runs: pd.DataFrame) -> Figure:
    """Output tokens/s per server label (solid) against concurrency; engine cells of the same workload (dashed)
    against their batch size. A panel per workload."""
    servers = closed_loop_cells(servers)
    workloads = sorted(servers["workload"].unique())
    fig, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        sub = servers[servers["workload"] == workload]
        xs = list(sub["concurrency"])
        for label, line in sub.groupby("label"):
            line = line.groupby("concurrency")["throughput_tok_s"].mean()
            ax.plot(line.index, line.to_numpy(), marker="o", label=f"server: {label}")
        engine = runs[runs["workload"] == workload] if not runs.empty else runs
        for label, line in (engine.groupby("label") if not engine.empty else []):
            line = line.groupby("batch_size")["throughput_tok_s"].mean()
            ax.plot(line.index, line.to_numpy(), marker="s", linestyle="--", label=f"engine: {label}")
            xs += list(line.index)
        _concurrency_axis(ax, xs)
        ax.set_ylabel("output tokens / s")
        ax.set_title(workload)
    _legend_below(fig, axes)
    return fig


@styled
def speedup_vs_concurrency(table: pd.DataFrame) -> Figure:
    """Server speedup (SD cell over its baseline at the same level) against concurrency; a panel per workload."""
    table = closed_loop_cells(table.dropna(subset=["speedup"]))
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        sub = table[table["workload"] == workload]
        for label, line in sub.groupby("label"):
            line = line.groupby("concurrency")["speedup"].mean()
            ax.plot(line.index, line.to_numpy(), marker="o", label=label)
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        _concurrency_axis(ax, sub["concurrency"])
        ax.set_ylabel("speedup over the baseline server")
        ax.set_title(workload)
    _legend_below(fig, axes)
    return fig


@styled
def latency_vs_concurrency(servers: pd.DataFrame) -> Figure:
    """TTFT, inter-token and end-to-end latency percentiles (p50 solid, p90 dashed, p99 dotted) against concurrency,
    a colour per label; one row of panels per workload."""
    servers = closed_loop_cells(servers)
    workloads = sorted(servers["workload"].unique())
    fig, axes = _panels(len(workloads) * len(SERVER_LATENCY_PANELS), cols=len(SERVER_LATENCY_PANELS))
    labels = sorted(servers["label"].unique())
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for w, workload in enumerate(workloads):
        sub = servers[servers["workload"] == workload]
        for p, (name, ylabel) in enumerate(SERVER_LATENCY_PANELS):
            ax = axes[w * len(SERVER_LATENCY_PANELS) + p]
            for label, line in sub.groupby("label"):
                for stat, style in SERVER_PERCENTILE_STYLES:
                    values = line.groupby("concurrency")[f"{name}_{stat}"].mean().dropna()
                    if not values.empty:
                        ax.plot(values.index, values.to_numpy(), linestyle=style, marker="o", markersize=3,
                                color=colours[label], label=f"{label} {stat}")
            _concurrency_axis(ax, sub["concurrency"])
            ax.set_ylabel(ylabel)
            ax.set_title(workload)
    _legend_below(fig, axes)
    return fig


@styled
def server_acceptance_by_position(servers: pd.DataFrame) -> Figure:
    """Acceptance rate of each draft position (1 = the first draft), a line per SD cell; a panel per label."""
    rows = servers[servers["acceptance_by_position"].map(lambda v: isinstance(v, list) and len(v) > 0)]
    labels = sorted(rows["label"].unique())
    fig, axes = _panels(len(labels))
    for ax, label in zip(axes, labels):
        for _, cell in rows[rows["label"] == label].sort_values("cell").iterrows():
            rates = np.asarray(cell["acceptance_by_position"], dtype=float)
            ax.plot(np.arange(1, len(rates) + 1), rates, marker="o", label=cell["cell"])
        longest = max(len(v) for v in rows[rows["label"] == label]["acceptance_by_position"])
        ax.set_xticks(range(1, longest + 1))
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("draft position")
        ax.set_ylabel("acceptance rate")
        ax.set_title(label)
    _legend_below(fig, axes)
    return fig


@styled
def chain_against_tree(measured: pd.DataFrame, simulated: pd.DataFrame) -> Figure:
    """Speedup against batch size, a panel per workload and proposer: each variant measured (solid, dots) and
    simulated (dashed)."""
    both = pd.concat([measured.assign(source="measured"), simulated.assign(source="simulated")])
    panels = sorted({(w, p) for w, p in zip(both["workload"], both["proposer"])})
    fig, axes = _panels(len(panels))
    colours = {}
    for ax, (workload, proposer) in zip(axes, panels):
        sub = both[(both["workload"] == workload) & (both["proposer"] == proposer)]
        for (variant, source), line in sub.groupby(["variant", "source"]):
            colour = colours.setdefault(variant, f"C{len(colours) % 10}")
            line = line.sort_values("batch_size")
            ax.plot(line["batch_size"], line["speedup"], "-o" if source == "measured" else "--", color=colour,
                    markersize=4, label=f"{variant} ({source})")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        _batch_axis(ax, sub["batch_size"])
        ax.set_ylabel("speedup over none")
        ax.set_title(f"{workload}: {proposer}")
    _legend_below(fig, axes)
    return fig
