"""Each figure draws its data: the right panels, one artist per series, values as given."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from specscope.analysis import figures, loaders, metrics

from .conftest import build_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return loaders.load_study(build_study(tmp_path_factory.mktemp("fig") / "study"))


def _visible(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_speedup_vs_batch_one_panel_per_workload_one_line_per_method(study):
    runs = metrics.with_speedup(study.runs)
    fig = figures.speedup_vs_batch(runs)
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes] == ["chat", "code-edit"]
    lines = {line.get_label(): line for line in axes[1].get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"none", "ngram k=3", "draft k=3"}
    expected = runs[(runs["workload"] == "code-edit") & (runs["label"] == "ngram k=3")].sort_values("batch_size")
    assert lines["ngram k=3"].get_ydata() == pytest.approx(expected["speedup"].to_numpy())


def test_time_breakdown_stacks_four_phases_per_cell(study):
    table = metrics.time_per_token(study.runs)
    fig = figures.time_breakdown(table)
    ax = _visible(fig)[0]
    assert len(ax.patches) == 4 * 6  # phases x cells of one workload
    chat = table[table["workload"] == "chat"].sort_values(["batch_size", "method", "k"])
    total = sum(chat[f"ms_{p}"].to_numpy() for p in loaders.PHASES)
    # the four stacked heights of each bar add up to the cell's ms per generated token
    heights = np.array([p.get_height() for p in ax.patches]).reshape(4, 6).sum(axis=0)
    assert heights == pytest.approx(total)


def test_memory_and_fidelity_figures(study):
    runs = metrics.with_speedup(study.runs)
    memory = metrics.memory_overhead(study.runs)
    fig = figures.memory_overhead(memory[memory["method"] != "none"])
    assert len(_visible(fig)) == 2 and len(_visible(fig)[0].patches) == 2 * 2  # methods x batch sizes
    table = metrics.fidelity(runs, study.simulation)
    fig = figures.fidelity(table)
    points = sum(len(c.get_offsets()) for c in _visible(fig)[0].collections)
    assert points == len(table) == 8


def test_trace_figures(study):
    trace = study.traces[0]
    matrices = {p: metrics.acc_len_matrix(trace, p) for p in trace.proposers}
    fig = figures.acc_heatmap(matrices, trace.k_max)
    images = [ax.images[0] for ax in _visible(fig) if ax.images]
    assert len(images) == 2 and images[0].get_array().shape == matrices["ngram"].shape
    curves = {p: metrics.mean_acc_by_position(trace, p) for p in trace.proposers}
    fig = figures.acc_by_position(curves)
    assert len(_visible(fig)[0].get_lines()) == curves["ngram"]["group"].nunique()
    fig = figures.position_difference(metrics.position_difference(trace, "ngram", "draft"), "ngram", "draft")
    assert len(_visible(fig)) == 2
    per_request, per_bin = metrics.bleu_bins(metrics.trace_requests([trace]), "ngram", "draft")
    fig = figures.bleu_vs_ratio(per_request, per_bin, "ngram", "draft")
    assert len(_visible(fig)[0].collections[0].get_offsets()) == len(per_request)
    fig = figures.acc_boxplots(metrics.trace_requests(study.traces), "proposer", "mean acc_len")
    assert [t.get_text() for t in _visible(fig)[0].get_xticklabels()] == ["draft", "ngram"]


def test_simulation_figures(study):
    sim = study.simulation
    rows = sim[sim["policy_kind"].isin(["fixed", "oracle"])]
    fig = figures.simulated_speedup(rows)
    labels = [l.get_label() for l in _visible(fig)[0].get_lines() if not l.get_label().startswith("_")]
    assert sorted(labels) == ["fixed-3 draft", "fixed-3 ngram", "oracle draft", "oracle ngram"]
    fig = figures.combine_vs_oracles(metrics.oracle_comparison(sim))
    assert len(_visible(fig)[0].patches) == 3 * 2  # series x batch sizes
