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
from specscope.analysis.page import ReportContext, Section
from specscope.analysis.sections.common import simulation_settings
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


def analytic_section(ctx: ReportContext) -> list[Section]:
    """The section (a list: empty when the simulation's cost model is not analytic)."""
    study, counter = ctx.study, ctx.counter
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
        figures.roofline(model.target, model.description or model.name, sizes, context, VERIFY_K),
        html.escape(
            f"Roofline of the analytic cost model '{model.name}': target step time against tokens per step (black, "
            "KV = 0), its weight-read and matmul parts (dashed), the memory-bound region (blue, reading the weights "
            "takes longer than the arithmetic: extra draft tokens are nearly free to verify) and the compute-bound "
            "region (orange: every verified token costs its matmuls); dots mark the simulated batch sizes at a plain "
            f"step, squares a k = {VERIFY_K} verification, each at KV = B x {context:,.0f} tokens (the traces' mean "
            "context). ") + html.escape(_settings(study))))
    section.table(pd.DataFrame(facts_table(model), columns=["", "value"]))
    return [section]


def _settings(study: Study) -> str:
    return simulation_settings(study, study.simulation) if study.simulation is not None else ""
