"""Figures of server cells (`specscope bench`): throughput and speedup against concurrency, latency percentiles,
acceptance by draft position. Tables in (`analysis/servers.py`), a matplotlib `Figure` out; captions are the
report's. Only cells measured at a fixed concurrency are drawn against it (request-rate cells: the table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from specscope.analysis.figures import _finish, _panels
from specscope.analysis.servers import closed_loop_cells as closed_loop

LATENCY_PANELS = (("ttft", "time to first token (ms)"), ("itl", "inter-token latency (ms)"),
                  ("e2e", "end-to-end latency (ms)"))
PERCENTILE_STYLES = (("p50", "-"), ("p90", "--"), ("p99", ":"))


def _concurrency_axis(ax, values) -> None:
    values = sorted(set(int(v) for v in values))
    if len(values) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    ax.set_xticklabels([str(v) for v in values])
    ax.set_xlabel("concurrency (requests in flight) / engine batch size")


def throughput_vs_concurrency(servers: pd.DataFrame, runs: pd.DataFrame) -> Figure:
    """Output tokens/s per server label (solid) against concurrency; engine cells of the same workload (dashed)
    against their batch size. A panel per workload."""
    servers = closed_loop(servers)
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
        ax.legend(fontsize=7)
    return _finish(fig)


def speedup_vs_concurrency(table: pd.DataFrame) -> Figure:
    """Server speedup (SD cell over its baseline at the same level) against concurrency; a panel per workload."""
    table = closed_loop(table.dropna(subset=["speedup"]))
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
        ax.legend(fontsize=7)
    return _finish(fig)


def latency_vs_concurrency(servers: pd.DataFrame) -> Figure:
    """TTFT, inter-token and end-to-end latency percentiles (p50 solid, p90 dashed, p99 dotted) against concurrency,
    a colour per label; one row of panels per workload."""
    servers = closed_loop(servers)
    workloads = sorted(servers["workload"].unique())
    fig, axes = _panels(len(workloads) * len(LATENCY_PANELS))
    labels = sorted(servers["label"].unique())
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for w, workload in enumerate(workloads):
        sub = servers[servers["workload"] == workload]
        for p, (name, ylabel) in enumerate(LATENCY_PANELS):
            ax = axes[w * len(LATENCY_PANELS) + p]
            for label, line in sub.groupby("label"):
                for stat, style in PERCENTILE_STYLES:
                    values = line.groupby("concurrency")[f"{name}_{stat}"].mean().dropna()
                    if not values.empty:
                        ax.plot(values.index, values.to_numpy(), linestyle=style, marker="o", markersize=3,
                                color=colours[label], label=f"{label} {stat}")
            _concurrency_axis(ax, sub["concurrency"])
            ax.set_ylabel(ylabel)
            ax.set_title(workload)
            ax.legend(fontsize=6)
    return _finish(fig)


def acceptance_by_position(servers: pd.DataFrame) -> Figure:
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
        ax.legend(fontsize=7)
    return _finish(fig)
