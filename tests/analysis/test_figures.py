"""Each figure draws its data: the right panels, one artist per series, values as given; and reads at the page's width."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text

from specscope.analysis import breakeven, figures, latency, loaders, metrics
from specscope.analysis.page import FIGURE_DPI

from .conftest import build_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return loaders.load_study(build_study(tmp_path_factory.mktemp("fig") / "study"))


def _visible(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _points(ax):
    """(x, y) of every single-point marker line in a panel."""
    return [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.get_lines() if len(line.get_xdata()) == 1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_legible(fig):
    """At most the page's width (no scaling in the browser), no text under MIN_FONT points, legends outside panels."""
    assert fig.get_size_inches()[0] * FIGURE_DPI <= figures.MAX_FIG_W * FIGURE_DPI + 1e-6
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert texts and min(t.get_fontsize() for t in texts) >= figures.MIN_FONT
    assert all(ax.get_legend() is None for ax in fig.axes)  # a figure legend, below the panels


def test_speedup_vs_batch_one_panel_per_workload_one_line_per_method(study):
    runs = metrics.with_speedup(study.runs)
    fig = figures.speedup_vs_batch(runs)
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes] == ["chat", "code-edit"]
    lines = {line.get_label(): line for line in axes[1].get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"none", "ngram k=3", "draft k=3", "draft tree 3x2"}
    expected = runs[(runs["workload"] == "code-edit") & (runs["label"] == "ngram k=3")].sort_values("batch_size")
    assert lines["ngram k=3"].get_ydata() == pytest.approx(expected["speedup"].to_numpy())
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["1", "4"]
    assert_legible(fig)


def test_time_breakdown_stacks_four_phases_per_cell_in_a_panel_per_workload_and_batch(study):
    table = metrics.time_per_token(study.runs)
    fig = figures.time_breakdown(table)
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes] == ["chat, batch 1", "chat, batch 4", "code-edit, batch 1",
                                               "code-edit, batch 4"]
    ax = axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["none", "draft k=3", "draft tree 3x2", "ngram k=3"]
    assert len(ax.patches) == 4 * 4  # phases x methods
    cells = table[(table["workload"] == "chat") & (table["batch_size"] == 1)].set_index("label")
    total = sum(cells[f"ms_{p}"] for p in loaders.PHASES).reindex(["none", "draft k=3", "draft tree 3x2", "ngram k=3"])
    # the four stacked widths of each bar add up to the cell's ms per generated token
    widths = np.array([p.get_width() for p in ax.patches]).reshape(4, 4).sum(axis=0)
    assert widths == pytest.approx(total.to_numpy())
    assert_legible(fig)


def test_memory_and_fidelity_figures(study):
    runs = metrics.with_speedup(study.runs)
    memory = metrics.memory_overhead(study.runs)
    fig = figures.memory_overhead(memory[memory["method"] != "none"])
    assert len(_visible(fig)) == 2 and len(_visible(fig)[0].patches) == 3 * 2  # methods x batch sizes
    assert_legible(fig)
    table = metrics.fidelity(runs, study.simulation)
    fig = figures.fidelity(table)
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes] == ["batch 1", "batch 4"]
    assert sum(len(_points(ax)) for ax in axes) == len(table) == 8
    batch4 = table[table["batch_size"] == 4]
    assert np.ravel(sorted(_points(axes[1]))) == pytest.approx(np.ravel(sorted(zip(batch4["measured"],
                                                                                batch4["predicted"]))))
    assert_legible(fig)


def test_throughput_against_latency_puts_each_batch_size_at_its_p50(study):
    cells = latency.cell_latency(study.requests, study.runs)
    fig = figures.throughput_vs_latency(cells)
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes] == ["chat", "code-edit"]
    chat = cells[cells["workload"] == "chat"]
    expected = sorted(zip(1000 * chat["per_token_s_p50"], chat["throughput_tok_s"]))
    assert np.ravel(sorted(_points(axes[0]))) == pytest.approx(np.ravel(expected))
    assert_legible(fig)


def test_break_even_draws_the_step_cost_curves_and_the_measured_acceptance(study):
    costs = breakeven.step_costs(study.profile)
    acceptance = breakeven.measured_acceptance(metrics.with_speedup(study.runs))
    fig = figures.break_even(costs, acceptance)
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes] == ["batch 1", "batch 4"]
    verify = next(line for line in axes[0].get_lines() if line.get_label().startswith("break-even: verify only"))
    expected = costs[(costs["batch_size"] == 1) & (costs["proposer"] == "verify only")]
    assert verify.get_ydata() == pytest.approx(expected["break_even"].to_numpy())
    assert len(_points(axes[0])) == len(acceptance[acceptance["batch_size"] == 1])
    assert_legible(fig)


def test_trace_figures(study):
    trace = study.traces[0]
    matrices = {p: metrics.acc_len_matrix(trace, p) for p in trace.proposers}
    fig = figures.acc_heatmap(matrices, trace.k_max)
    images = [ax.images[0] for ax in _visible(fig) if ax.images]
    assert len(images) == 2 and images[0].get_array().shape == matrices["ngram"].shape
    fig.canvas.draw()
    ticks = [float(t.get_text().replace("−", "-")) for t in _visible(fig)[0].get_yticklabels() if t.get_text()]
    assert ticks and all(t == int(t) and 1 <= t <= len(trace.requests) for t in ticks)  # request numbers, not -0.5
    assert_legible(fig)
    curves = {p: metrics.mean_acc_by_position(trace, p) for p in trace.proposers}
    fig = figures.acc_by_position(curves)
    assert len(_visible(fig)[0].get_lines()) == curves["ngram"]["group"].nunique()
    assert_legible(fig)
    fig = figures.position_difference(metrics.position_difference(trace, "ngram", "draft"), "ngram", "draft")
    assert len(_visible(fig)) == 2
    assert_legible(fig)
    per_request, per_bin = metrics.bleu_bins(metrics.trace_requests([trace]), "ngram", "draft")
    fig = figures.bleu_vs_ratio(per_request, per_bin, "ngram", "draft")
    ax = _visible(fig)[0]
    assert len(ax.collections[0].get_offsets()) == len(per_request)
    assert len([t for t in ax.get_yticklabels() if t.get_text()]) >= 3  # a log axis with several labelled ticks
    assert_legible(fig)
    fig = figures.acc_boxplots(metrics.trace_requests(study.traces), "proposer", "mean acc_len")
    assert [t.get_text() for t in _visible(fig)[0].get_xticklabels()] == ["draft", "ngram"]
    assert_legible(fig)


def test_measured_box_plots_order_methods_and_batch_sizes(study):
    requests = study.requests[study.requests["method"] != "none"]
    fig = figures.measured_acc_boxplots(requests, "mean acceptance length")
    axes = _visible(fig)
    assert [ax.get_title() for ax in axes][:2] == ["chat, batch 1", "chat, batch 4"]  # numeric, not 1, 16, 4
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["draft k=3", "draft tree 3x2", "ngram k=3"]
    assert_legible(fig)


def test_ratio_axis_labels_at_least_three_ticks_even_for_a_narrow_range():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0.97, 1.02])
    figures.ratio_axis(ax, [0.97, 1.02])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) >= 3 and "1" in labels


def test_simulation_figures(study):
    sim = study.simulation
    rows = sim[sim["policy_kind"].isin(["fixed", "oracle"])]
    fig = figures.simulated_speedup(rows)
    labels = [l.get_label() for l in _visible(fig)[0].get_lines() if not l.get_label().startswith("_")]
    assert sorted(labels) == ["fixed-3 draft", "fixed-3 ngram", "oracle draft", "oracle ngram"]
    assert_legible(fig)
    fig = figures.combine_vs_oracles(metrics.oracle_comparison(sim))
    assert len(_visible(fig)[0].patches) == 3 * 2  # series x batch sizes
    assert_legible(fig)


def test_roofline_marks_each_batch_size_and_is_legible():
    from specscope.costs.pricing import analytic_cost_model

    model = analytic_cost_model("llama-3.1-8b", "h100-sxm").model
    fig = figures.roofline(model.target, model.name, [1, 8, 32], 1024.0, 3)
    assert_legible(fig)
    assert [t.get_text() for t in fig.axes[0].texts] == ["B=1", "B=8", "B=32"]
