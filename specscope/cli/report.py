"""`specscope report DIR`: write the study folder's figures and recommendation as DIR/report.html.

    specscope report specscope-out            # -> specscope-out/report.html
    specscope report DIR -o elsewhere.html

Prints the verdict (per workload and batch size: enable, do not enable or no measurable difference), one
line per report section (shown, or why not) and the report's path; with `--json`, then one JSON line:
{"report": PATH, "figures": N, "sections": N, "missing": [section titles], "verdict": [rows]} (keys:
docs/formats.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from specscope.cli.options import JsonOpt, print_json
from specscope.errors import SpecscopeError
from specscope.formats.files import check_output_file


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    study: Path = typer.Argument(
        ..., metavar="DIR", help="Study folder: runs/, traces/, simulation.csv (any may be missing)."
    ),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the HTML (default: DIR/report.html)."),
    json_out: JsonOpt = False,
) -> None:
    """Write a self-contained HTML report of a study folder's measured, trace and simulated results."""
    missing = [m for m in ("matplotlib", "pandas") if importlib.util.find_spec(m) is None]
    if missing:
        raise SpecscopeError(f"`specscope report` needs {' and '.join(missing)}: pip install 'specscope[report]'")
    from specscope.analysis.report import write_report

    if output is not None:
        check_output_file(output, "report.html")

    result = write_report(study, output)
    from specscope.analysis.sections.front import verdict_line

    if result.verdict:
        print("verdict:")
        for row in result.verdict:
            print(f"  {verdict_line(row)}")
    print("sections:")
    for section in result.sections:
        figures = sum(b.is_figure for b in section.blocks)
        state = f"not shown: {section.missing}" if section.missing else f"{figures} figure(s)" if figures else "table"
        print(f"  {section.title:<58} {state}")
    print(f"report: {result.path}")
    print_json(json_out, {
        "report": str(result.path), "figures": result.figures, "sections": len(result.sections),
        "missing": result.missing, "verdict": result.verdict,
    })
