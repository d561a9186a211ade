"""The study's figures: one function per figure, tables in, a matplotlib `Figure` out.

Uses the non-interactive Agg backend (no display needed). Functions take the tables that
`metrics` computes and only draw; captions are written by `report`. Panels are one per workload
(or per trace / proposer) so that no figure mixes settings that should not be compared.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from specscope.formats.summary import PHASES  # noqa: E402

PHASE_COLOURS = {"draft": "#4c72b0", "verify": "#dd8452", "sample": "#55a868", "overhead": "#8c8c8c"}
PANEL_W, PANEL_H = 4.6, 3.4
MAX_COLS = 3
HEATMAP_MAX_POSITIONS = 1024


def _panels(n: int, width: float = PANEL_W, height: float = PANEL_H, sharey: bool = False):
    """A figure with `n` panels in rows of at most MAX_COLS; returns (figure, flat list of axes)."""
    cols = min(n, MAX_COLS)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=sharey)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _finish(fig: Figure) -> Figure:
    fig.tight_layout()
    return fig


def _batch_axis(ax, batch_sizes) -> None:
    """Batch sizes on a log-2 axis with their values as ticks."""
    sizes = sorted(set(int(b) for b in batch_sizes))
    if len(sizes) > 1 and sizes[0] > 0:
        ax.set_xscale("log", base=2)
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(b) for b in sizes])
    ax.set_xlabel("batch size")


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling mean ignoring NaN (window 1 = unchanged)."""
    if window <= 1:
        return values
    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()


def smoothing_window(width: int) -> int:
    """Rolling-mean window for per-position curves: about 1/50 of the positions shown."""
    return max(1, width // 50)


# ---------------------------------------------------------------------------------------------
# Measured runs


def speedup_vs_batch(runs: pd.DataFrame) -> Figure:
    """Measured speedup against batch size: a panel per workload, a line per method and k."""
    workloads = sorted(runs["workload"].unique())
    fig, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        sub = runs[runs["workload"] == workload].dropna(subset=["speedup"])
        for label, line in sub.groupby("label"):
            line = line.groupby("batch_size")["speedup"].mean()
            ax.plot(line.index, line.to_numpy(), marker="o", label=label)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        _batch_axis(ax, sub["batch_size"])
        ax.set_ylabel("speedup over none")
        ax.set_title(workload)
        ax.legend(fontsize=8)
    return _finish(fig)


def time_breakdown(table: pd.DataFrame) -> Figure:
    """Stacked bars of ms per generated token by phase: a panel per workload, a bar per cell."""
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads), width=max(PANEL_W, 0.5 * table.groupby("workload").size().max() + 1.5))
    for ax, workload in zip(axes, workloads):
        sub = table[table["workload"] == workload].sort_values(["batch_size", "method", "k"])
        x = np.arange(len(sub))
        bottom = np.zeros(len(sub))
        for phase in PHASES:
            values = sub[f"ms_{phase}"].fillna(0).to_numpy()
            ax.bar(x, values, bottom=bottom, color=PHASE_COLOURS[phase], label=phase)
            bottom += values
        ax.set_xticks(x)
        ax.set_xticklabels([f"{lab}\nb={b}" for lab, b in zip(sub["label"], sub["batch_size"])],
                           rotation=90, fontsize=7)
        ax.set_ylabel("ms per generated token")
        ax.set_title(workload)
        ax.legend(fontsize=8)
    return _finish(fig)


def memory_overhead(table: pd.DataFrame) -> Figure:
    """Extra peak RSS over `none` (MB): a panel per workload, bars per method and batch size."""
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads))
    for ax, workload in zip(axes, workloads):
        sub = table[(table["workload"] == workload)].dropna(subset=["extra_mb"])
        pivot = sub.pivot_table(index="label", columns="batch_size", values="extra_mb", aggfunc="mean")
        width = 0.8 / max(1, len(pivot.columns))
        x = np.arange(len(pivot.index))
        for j, batch in enumerate(pivot.columns):
            ax.bar(x + j * width - 0.4 + width / 2, pivot[batch].to_numpy(), width, label=f"b={batch}")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(pivot.index, rotation=30, fontsize=8)
        ax.set_ylabel("peak RSS over none (MB)")
        ax.set_title(workload)
        ax.legend(fontsize=8)
    return _finish(fig)


def acc_boxplots(table: pd.DataFrame, group: str, ylabel: str) -> Figure:
    """Box plots of per-request mean acceptance length: a panel per workload, a box per `group`."""
    workloads = sorted(table["workload"].unique())
    fig, axes = _panels(len(workloads), sharey=True)
    for ax, workload in zip(axes, workloads):
        sub = table[table["workload"] == workload].dropna(subset=["mean_acc_len"])
        names = sorted(sub[group].unique())
        data = [sub.loc[sub[group] == n, "mean_acc_len"].to_numpy() for n in names]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(np.arange(1, len(names) + 1))
        ax.set_xticklabels(names, rotation=30, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(workload)
    return _finish(fig)


def fidelity(table: pd.DataFrame) -> Figure:
    """Simulated against measured speedup, one point per measured cell, with the y = x line."""
    fig, (ax,) = _panels(1, width=5.5, height=4.5)
    several_modes = table["mode"].nunique() > 1
    for (method, mode), sub in table.groupby(["method", "mode"]):
        ax.scatter(sub["measured"], sub["predicted"], label=f"{method} ({mode} mode)" if several_modes else method)
        for _, row in sub.iterrows():
            ax.annotate(f"{row['workload']} b={row['batch_size']}", (row["measured"], row["predicted"]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
    lo = min(table["measured"].min(), table["predicted"].min(), 1.0) * 0.9
    hi = max(table["measured"].max(), table["predicted"].max(), 1.0) * 1.1
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, linestyle="--", label="predicted = measured")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured speedup")
    ax.set_ylabel("simulated speedup (same policy)")
    ax.legend(fontsize=8)
    return _finish(fig)


# ---------------------------------------------------------------------------------------------
# Traces


def acc_heatmap(matrices: dict[str, np.ndarray], k_max: int | None) -> Figure:
    """acc_len per output position (x) and request (y, longest first): a panel per proposer."""
    fig, axes = _panels(len(matrices), width=6.0, height=4.2)
    vmax = (k_max + 1) if k_max else max(np.nanmax(m) for m in matrices.values())
    for ax, (proposer, matrix) in zip(axes, matrices.items()):
        image = ax.imshow(np.ma.masked_invalid(matrix), aspect="auto", interpolation="nearest",
                          cmap="viridis", vmin=1, vmax=vmax)
        ax.set_xlabel("output position")
        ax.set_ylabel("request (sorted by output length)")
        ax.set_title(proposer)
        fig.colorbar(image, ax=ax, label="acc_len")
    return _finish(fig)


def acc_by_position(curves: dict[str, pd.DataFrame]) -> Figure:
    """Mean acc_len per output position, a line per output-length group: a panel per proposer."""
    fig, axes = _panels(len(curves), sharey=True)
    for ax, (proposer, table) in zip(axes, curves.items()):
        for group, line in table.groupby("group", sort=False):
            values = line["mean_acc_len"].to_numpy()
            ax.plot(line["position"], _smooth(values, smoothing_window(len(values))), label=group, linewidth=1.2)
        ax.set_xlabel("output position")
        ax.set_ylabel("mean acc_len")
        ax.set_title(proposer)
        ax.legend(fontsize=7, title="output length", title_fontsize=7)
    return _finish(fig)


def position_difference(table: pd.DataFrame, a: str, b: str) -> Figure:
    """Mean acc_len[a] - acc_len[b] per position (left) and the share of requests each wins (right)."""
    fig, (left, right) = _panels(2, width=5.5)
    window = smoothing_window(len(table))
    left.plot(table["position"], _smooth(table["mean_diff"].to_numpy(), window), color="#4c72b0")
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xlabel("output position")
    left.set_ylabel(f"mean acc_len: {a} - {b}")
    right.plot(table["position"], _smooth(table["a_wins"].to_numpy(), window), label=f"{a} longer")
    right.plot(table["position"], _smooth(table["b_wins"].to_numpy(), window), label=f"{b} longer")
    right.set_ylim(0, 1)
    right.set_xlabel("output position")
    right.set_ylabel("share of requests")
    right.legend(fontsize=8)
    return _finish(fig)


def bleu_vs_ratio(per_request: pd.DataFrame, per_bin: pd.DataFrame, ngram: str, other: str) -> Figure:
    """Per-request n-gram/other oracle throughput ratio against BLEU-4 overlap, with bin means."""
    fig, (ax,) = _panels(1, width=7.0, height=4.2)
    ax.scatter(per_request["bleu4"], per_request["ratio"], s=10, alpha=0.4, color="#8c8c8c", label="request")
    filled = per_bin.dropna(subset=["mean_ratio"])
    centres = (filled["lo"] + filled["hi"]) / 2
    ax.plot(centres, filled["mean_ratio"], marker="o", color="#c44e52", label="bin mean")
    for x, y, n in zip(centres, filled["mean_ratio"], filled["requests"]):
        ax.annotate(f"n={int(n)}", (x, y), fontsize=7, xytext=(0, 6), textcoords="offset points", ha="center")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("BLEU-4 prompt-output overlap (token ids)")
    ax.set_ylabel(f"{ngram} / {other} oracle tokens per step")
    ax.legend(fontsize=8)
    return _finish(fig)


# ---------------------------------------------------------------------------------------------
# Simulation


def simulated_speedup(simulation: pd.DataFrame) -> Figure:
    """Simulated speedup against batch size: a panel per trace, a colour per proposer, a marker per
    policy; oracle solid, fixed-k dashed, adaptive dash-dot."""
    traces = sorted(simulation["trace"].unique())
    fig, axes = _panels(len(traces), width=6.0, height=4.2)
    styles = {"oracle": "-", "fixed": "--", "combine": "-.", "adaptive": "-."}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {p: palette[i % len(palette)] for i, p in enumerate(sorted(simulation["proposers"].unique()))}
    marker_cycle = "os^vDP*Xph"
    markers = {p: marker_cycle[i % len(marker_cycle)] for i, p in enumerate(sorted(simulation["policy"].unique()))}
    for ax, trace in zip(axes, traces):
        sub = simulation[simulation["trace"] == trace].dropna(subset=["speedup"])
        several_modes = sub["mode"].nunique() > 1
        for (kind, proposers, policy, mode), line in sub.groupby(["policy_kind", "proposers", "policy", "mode"]):
            line = line.groupby("batch_size")["speedup"].mean()
            label = f"{policy} {proposers}" + (f" ({mode})" if several_modes else "")
            ax.plot(line.index, line.to_numpy(), styles.get(kind, ":"), marker=markers[policy], markersize=4,
                    color=colours[proposers], label=label)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        _batch_axis(ax, sub["batch_size"])
        ax.set_ylabel("simulated speedup")
        ax.set_title(trace)
        ax.legend(fontsize=7)
    return _finish(fig)


def combine_vs_oracles(table: pd.DataFrame) -> Figure:
    """Bars of simulated speedup per batch size: each single-proposer oracle and the combine oracle."""
    traces = sorted(table["trace"].unique())
    fig, axes = _panels(len(traces))
    for ax, trace in zip(axes, traces):
        sub = table[table["trace"] == trace]
        pivot = sub.pivot_table(index="batch_size", columns="series", values="speedup", aggfunc="mean")
        width = 0.8 / max(1, len(pivot.columns))
        x = np.arange(len(pivot.index))
        for j, series in enumerate(pivot.columns):
            ax.bar(x + j * width - 0.4 + width / 2, pivot[series].to_numpy(), width, label=series)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        ax.set_xticks(x)
        ax.set_xticklabels([str(b) for b in pivot.index])
        ax.set_xlabel("batch size")
        ax.set_ylabel("simulated speedup")
        ax.set_title(trace)
        ax.legend(fontsize=7)
    return _finish(fig)
