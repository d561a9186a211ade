"""The report's section on an analytic cost model: said plainly, with the roofline it priced steps by.

Shown only when the study's simulation ran under an analytic (roofline) cost model — the one in
`simulation_cost_model.toml` (written by the sweep when it simulates under a named cost model), else
`cost_model.toml` if that one is analytic. The figure: target step time against tokens per step on
log axes (KV = 0: weights and matmuls only), the weight-read and matmul parts, the memory-bound and
compute-bound regions shaded, and where the sweep's batch sizes fall — each batch size B at B tokens
(a plain decoding step) and at 4B (a k = 3 verification), priced at its own KV of B x the traces'
mean context. A table gives the figures behind it (device, dtype, tp, efficiencies, memory).
"""

from __future__ import annotations

import html

import numpy as np

from specscope.analysis import figures
from specscope.analysis.loaders import Study
from specscope.costs.analytic import RooflineCost
from specscope.costs.model import CostModel

TITLE = "Cost model: analytic roofline (predicted, not measured)"
VERIFY_K = 3  # the verification step marked beside each batch size
DEFAULT_CONTEXT = 1024  # tokens per sequence when the study has no traces to take it from


def analytic_model(study: Study) -> CostModel | None:
    """The study's simulation cost model when it is analytic, else None."""
    model = study.simulation_cost_model
    if model is None and isinstance(study.cost_model, dict):
        target = study.cost_model.get("target")
        if isinstance(target, dict) and target.get("form") == RooflineCost.form:
            from specscope.costs.presets import read_cost_model
            from specscope.formats.layout import StudyFolder

            model = read_cost_model(StudyFolder(study.root).cost_model)
    return model if model is not None and isinstance(model.target, RooflineCost) else None


def mean_context(study: Study) -> float:
    """Mean tokens a running sequence holds: prompt + half its output, over the study's traces."""
    lengths = [r.prompt_len + r.gen_len(t.proposers) / 2 for t in study.traces for r in t.requests]
    return float(np.mean(lengths)) if lengths else float(DEFAULT_CONTEXT)


def roofline_figure(model: CostModel, batch_sizes, context: float):
    """Step time against tokens per step with its parts, the two regions and the batch sizes marked."""
    target: RooflineCost = model.target
    sizes = sorted(int(b) for b in batch_sizes) or [1]
    top = max(4096, VERIFY_K * 4 * sizes[-1])
    n = np.unique(np.round(np.geomspace(1, top, 200)))
    fig, axes = figures._panels(1, width=8.0, height=4.6)
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
        ax.plot([b * (VERIFY_K + 1)], [target(b * (VERIFY_K + 1), kv) * ms], "s", color="#c44e52", markersize=4)
        ax.annotate(f"B={b}", (b, target(b, kv) * ms), textcoords="offset points", xytext=(0, 7), fontsize=7,
                    ha="center")
    ax.plot([], [], "o", color="#55a868", label="batch size B: plain step (B tokens, KV B x context)")
    ax.plot([], [], "s", color="#c44e52", label=f"batch size B: k = {VERIFY_K} verification ({VERIFY_K + 1}B tokens)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, top)
    ax.set_xlabel("tokens per step (all sequences of the batch)")
    ax.set_ylabel("target step time (ms)")
    ax.set_title(model.description or model.name)
    ax.legend(fontsize=7, loc="lower right")
    return figures._finish(fig)


def facts_table(model: CostModel) -> list[tuple[str, str]]:
    """(what, value) rows: what the analytic model was built from."""
    p, t = model.provenance, model.target
    eff = p.get("efficiencies", {}) if isinstance(p.get("efficiencies"), dict) else {}
    memory = p.get("memory", {}) if isinstance(p.get("memory"), dict) else {}
    rows = [
        ("model", str(p.get("model", "?"))),
        ("hardware", f"{p.get('hardware', '?')}: {p.get('hardware_description', '')}"),
        ("dtype, tensor parallel", f"{p.get('dtype', '?')}, tp {p.get('tp', '?')}"),
        ("weights read per step per device", f"{t.weight_bytes / 1e9:.2f} GB"),
        ("KV per token per device", f"{t.kv_bytes_per_token / 1e3:.1f} kB"),
        ("compute-bound above", f"{t.compute_bound_from():,.0f} tokens per step"),
        ("efficiencies (weights, KV, compute, overlap)",
         f"{t.weight_bandwidth_efficiency:.3f}, {t.kv_bandwidth_efficiency:.3f}, {t.compute_efficiency:.3f}, {t.overlap:g}"),
        ("calibrated on", str(eff.get("provenance_source", "?"))),
    ]
    if model.max_kv_tokens is not None:
        rows.append(("KV tokens that fit next to the weights", f"{model.max_kv_tokens:,}"
                     + (f" ({memory.get('weights_gb_per_device')} GB weights of {memory.get('usable_gb_per_device')} "
                        "GB usable per device)" if memory else "")))
    drafts = p.get("drafts")
    if isinstance(drafts, dict):
        rows.append(("drafts (proposer: priced as)", "; ".join(f"{k}: {v}" for k, v in drafts.items())))
    return rows


def analytic_sections(study: Study, counter) -> list:
    """The section (a list: empty when the simulation's cost model is not analytic)."""
    from specscope.analysis.report import Block, Section, _table_html

    model = analytic_model(study)
    if model is None:
        return []
    import pandas as pd

    sim = study.simulation
    sizes = sorted(sim["batch_size"].unique()) if sim is not None else [1, 8, 32]
    context = mean_context(study)
    section = Section(TITLE, intro=html.escape(
        f"The simulated speedups of this study are priced by an analytic cost model, '{model.name}': step times "
        "predicted from the model's shape and the hardware's datasheet with efficiencies calibrated once "
        "(specscope/data/efficiency.toml), not measured on that hardware. Trust them as far as the roofline: "
        "within 10% of the published Llama-3.1-8B/H100 fit it was calibrated on; untested on other devices."))
    section.blocks.append(counter.figure(
        roofline_figure(model, sizes, context),
        html.escape(
            f"Roofline of the analytic cost model '{model.name}': target step time against tokens per step (black, "
            "KV = 0), its weight-read and matmul parts (dashed), the memory-bound region (blue, reading the weights "
            "takes longer than the arithmetic: extra draft tokens are nearly free to verify) and the compute-bound "
            "region (orange: every verified token costs its matmuls); dots mark the simulated batch sizes at a plain "
            f"step, squares a k = {VERIFY_K} verification, each at KV = B x {context:,.0f} tokens (the traces' mean "
            "context). ") + html.escape(_settings(study))))
    section.blocks.append(Block(_table_html(pd.DataFrame(facts_table(model), columns=["", "value"]))))
    return [section]


def _settings(study: Study) -> str:
    from specscope.analysis.report import simulation_settings

    return simulation_settings(study, study.simulation) if study.simulation is not None else ""
