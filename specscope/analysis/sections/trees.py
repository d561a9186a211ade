"""The report's chain-vs-tree section (tables from `analysis/trees.py`): a proposer drafting a chain of k against the
same proposer drafting a tree, measured and simulated, and where the chain catches up, side by side."""

from __future__ import annotations

import html

from specscope.analysis import figures
from specscope.analysis.page import ReportContext, Section, num, x
from specscope.analysis.sections.common import runs_settings, simulation_settings
from specscope.analysis.trees import TITLE, crossover_table, has_trees, measured_pairs, simulated_pairs


def chain_against_tree_section(ctx: ReportContext) -> list[Section]:
    """The section (a list: empty when the study has no trees at all)."""
    study, runs, counter = ctx.study, ctx.runs, ctx.counter
    if not has_trees(study, runs):
        return []

    section = Section(TITLE, intro=html.escape(
        "A proposer drafting a chain of k tokens against the same proposer drafting a tree (the whole tree verified "
        "in one pass). The study's result: trees lead slightly at batch size 1, where the verification pass is "
        "memory-bound and a tree's extra tokens are nearly free, while chains are often stronger as the batch grows "
        "and every verified token costs compute."))
    measured, simulated = measured_pairs(runs), simulated_pairs(study.simulation)
    if measured.empty and simulated.empty:
        section.missing = ("no tree next to a chain of the same proposer: measure tree cells (a sweep's `trees` key, "
                           "or `specscope run --tree`) beside chain cells, or trace them (`specscope trace --trees`) "
                           "and simulate the tree keys under policy `tree`.")
        return [section]
    settings = " ".join(s for s in (runs_settings(runs) if not measured.empty else "",
                                    simulation_settings(study, study.simulation) if not simulated.empty else "") if s)
    section.blocks.append(counter.figure(
        figures.chain_against_tree(measured, simulated),
        html.escape("Speedup over plain decoding against batch size, chain against tree: measured cells (solid, "
                    "dots) and the simulation of the traces (dashed; the tree verified whole every step, the chain "
                    "at a fixed k). " + settings)))
    section.paragraph("Where the chain catches up with the tree, from measurement and from simulation, and the tree's "
                      "mean acceptance length over the chain's.")
    section.table(crossover_table(measured, simulated))
    if not measured.empty:
        shown = measured.assign(speedup=measured["speedup"].map(x),
                                mean_acc_len=measured["mean_acc_len"].map(num),
                                verify_ms_per_step=measured["verify_ms_per_step"].map(num))
        section.paragraph("Measured: speedup, mean acceptance length (tokens committed per step) and the verification "
                          "pass's time per step (ms) of each variant.")
        section.table(shown.rename(columns={"batch_size": "B", "mean_acc_len": "acc_len",
                                            "verify_ms_per_step": "verify ms/step"}))
    if not simulated.empty:
        shown = simulated.assign(speedup=simulated["speedup"].map(x), oracle=simulated["oracle"].map(x),
                                 mean_acc_len=simulated["mean_acc_len"].map(num))
        section.paragraph("Simulated: speedup of each variant and the oracle bound over the same proposer (the oracle "
                          "over a tree verifies only the path it accepts, drafting the whole tree).")
        section.table(shown.rename(columns={"batch_size": "B", "mean_acc_len": "acc_len", "oracle": "oracle bound"}))
    return [section]
