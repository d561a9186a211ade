"""Assemble the study's report: one self-contained `report.html` (figures inlined as base64 PNG).

    from specscope.analysis.report import write_report
    result = write_report("specscope-out")      # -> specscope-out/report.html

The page answers first and shows the evidence after: the verdict (enable speculation or not, per workload
and batch size, with its uncertainty and latency effect), latency, why speculation pays or not on this
hardware, then the measured results (and, in a folder with cells `specscope bench` measured on servers, a
server section beside them), traced and simulated results. `SECTION_BUILDERS` is the page's structure, in
order: each builder (`specscope/analysis/sections/`) reads a `page.ReportContext` and returns its section(s);
adding a section is a builder and one line here. Every figure has a caption saying what it shows and the
settings of the runs, traces or simulation behind it. A section whose data the folder lacks says in one line
what is missing and how to produce it (at the end of the page), so nothing disappears silently. The page
needs no network to view.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from specscope.analysis import metrics
from specscope.analysis.loaders import Study, load_study
from specscope.analysis.page import ReportContext, Section, render_html
from specscope.analysis.sections.analytic import analytic_section
from specscope.analysis.sections import front, measured, servers, simulated, traces, trees
from specscope.errors import SpecscopeError
from specscope.formats.files import write_text_atomic

REPORT_NAME = "report.html"

SectionBuilder = Callable[[ReportContext], "Section | list[Section]"]

SECTION_BUILDERS: list[SectionBuilder] = [
    front.verdict_section,
    front.latency_section,
    front.why_section,
    measured.speedup_section,
    servers.servers_section,  # only in folders `specscope bench` wrote cells to
    measured.time_breakdown_section,
    measured.memory_section,
    trees.chain_against_tree_section,  # only when the study has trees: chain against tree, measured and simulated
    traces.acceptance_by_position_section,
    measured.request_acceptance_section,
    traces.bleu_overlap_section,
    traces.proposer_difference_section,
    simulated.simulated_section,
    analytic_section,  # only when the simulation's cost model is analytic
    simulated.combine_section,
    simulated.headroom_section,
    simulated.fidelity_section,
]


@dataclass
class ReportResult:
    path: Path
    sections: list[Section]
    verdict: list[dict] = field(default_factory=list)  # sections.front.verdict_rows: the answer, for terminals

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
    ctx = report_context(study)
    sections = build_sections(ctx)
    write_text_atomic(path, render_html(ctx.study, sections))  # repeats folded: cells counted once
    return ReportResult(path, sections, front.verdict_rows(ctx))


def report_context(study: Study) -> ReportContext:
    """The context every builder reads: a cell measured several times (a sweep's `repeats`) appears once, as the
    median of its repeats with their spread (`metrics.cells`), in `ctx.runs` and `ctx.study.runs` alike."""
    runs = metrics.cells(study.runs) if not study.runs.empty else study.runs
    return ReportContext(dataclasses.replace(study, runs=runs), runs)


def build_sections(ctx: ReportContext, builders: list[SectionBuilder] | None = None) -> list[Section]:
    """Every section of the report, in SECTION_BUILDERS' order, with its figures or the reason it is empty."""
    sections: list[Section] = []
    for builder in builders if builders is not None else SECTION_BUILDERS:
        made = builder(ctx)
        sections.extend(made if isinstance(made, list) else [made])
    return sections
