"""The report's page: sections and blocks, numbered figures, tables, number formats and the HTML around them.

A report is a list of `Section`s (`report.SECTION_BUILDERS` makes them, in page order); a section holds
`Block`s — a figure (an inline PNG with its caption), a table or a paragraph — or says in `missing` why it
shows nothing. `ReportContext` is what every section builder reads: the loaded study, its measured cells
with their speedups, and the figure counter. Nothing here computes a metric.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from specscope import __version__
from specscope.analysis.loaders import Study

FIGURE_DPI = 100  # figures are drawn at most figures.MAX_FIG_W inches wide: they fit the page unscaled
FOLD_ROWS = 24  # longer tables are folded (<details>): the figure above them is the overview


@dataclass
class Block:
    """One piece of a section: a figure (PNG bytes + caption), a table or a paragraph (HTML)."""

    html: str
    is_figure: bool = False


@dataclass
class Section:
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)
    missing: str = ""  # why the section shows nothing (empty when it shows something)
    anchor: str = ""  # the section's id in the page (default: from the title)

    @property
    def id(self) -> str:
        return self.anchor or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def paragraph(self, text_html: str, css: str = "") -> None:
        self.blocks.append(Block(f"<p{f' class={css!r}' if css else ''}>{text_html}</p>"))

    def table(self, table: pd.DataFrame, css: str = "", fold_over: int | None = FOLD_ROWS) -> None:
        """A table; one longer than `fold_over` rows is folded under a one-line summary the reader opens."""
        body = table_html(table, css)
        if fold_over is not None and len(table) > fold_over:
            body = f"<details><summary>The values: a table of {len(table)} rows (open)</summary>{body}</details>"
        self.blocks.append(Block(body))


class FigureCounter:
    """Numbers figures in page order and renders each into an inline PNG block."""

    def __init__(self):
        self.count = 0

    def figure(self, fig, caption_html: str) -> Block:
        import matplotlib.pyplot as plt

        self.count += 1
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
        plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return Block(
            f"<figure><img class='figure' alt='Figure {self.count}' src='data:image/png;base64,{data}'>"
            f"<figcaption><b>Figure {self.count}.</b> {caption_html}</figcaption></figure>",
            is_figure=True,
        )


@dataclass
class ReportContext:
    """What a section builder reads: the study, its measured cells with `speedup`, one row per cell with its
    repeats folded (metrics.cells: `repeats`, `throughput_rel_spread`, `speedup_spread`, `busy`), and the
    figure counter (figures are numbered in the order builders draw them)."""

    study: Study
    runs: pd.DataFrame
    counter: FigureCounter = field(default_factory=FigureCounter)

    @property
    def has_speedups(self) -> bool:
        return not self.runs.empty and "speedup" in self.runs and self.runs["speedup"].notna().any()


# ---------------------------------------------------------------------------------------------
# Number formats (one place, so every table spells values alike)


def x(value) -> str:
    """A speedup: `1.23x`."""
    return "" if pd.isna(value) else f"{value:.2f}x"


def pct(value) -> str:
    """A signed percentage: `+1.5%`."""
    return "" if pd.isna(value) else f"{value:+.1f}%"


def share(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.0%}"


def num(value, digits: int = 2) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def ms(seconds) -> str:
    """Seconds as milliseconds (3 significant digits): `41.2 ms`, `1,230 ms`."""
    if seconds is None or pd.isna(seconds):
        return ""
    value = 1000.0 * float(seconds)
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.3g} ms"


def table_html(table: pd.DataFrame, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.itertuples(index=False)
    )
    klass = f" class='{css}'" if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# The page


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em;
       line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1.5em 0; } img.figure { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.4em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; } th { background: #f3f3f3; }
table.verdict { font-size: 1em; } table.verdict td:nth-child(3) { font-weight: 600; }
.missing p { color: #8a5a00; background: #fff8e6; padding: 0.5em 0.8em; border-left: 3px solid #e0a800; }
.settings, .meta { font-size: 0.9em; color: #555; }
details { margin: 1em 0; } summary { cursor: pointer; color: #1a4f8a; }
nav.contents { font-size: 0.9em; display: flex; flex-wrap: wrap; gap: 0.2em 1em; } nav.contents a { white-space: nowrap; }
"""


def render_html(study: Study, sections: list[Section]) -> str:
    """The whole page as one string: a header, a line of links to the sections, then the sections in order."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>specscope report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>specscope report</h1>",
        f"<p class='meta'>Study folder <code>{html.escape(str(study.root))}</code>: {_contents(study)}. "
        f"Written {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by specscope {html.escape(__version__)}.</p>",
        "<nav class='contents'>" + "".join(f"<a href='#{s.id}'>{html.escape(s.title)}</a>" for s in sections
                                           if not s.missing) + "</nav>",
    ]
    if study.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in study.notes)
        parts.append(f"<p class='meta'>Notes:</p><ul class='meta'>{items}</ul>")
    missing = [s.title for s in sections if s.missing]
    if missing:
        parts.append(f"<p class='meta'>Not shown for lack of data: {html.escape(', '.join(missing))} "
                     "(see each section at the end of the page).</p>")
    for section in sorted(sections, key=lambda s: bool(s.missing)):  # sections with data first, in order
        css = " class='missing'" if section.missing else ""
        parts.append(f"<section id='{section.id}'{css}><h2>{html.escape(section.title)}</h2>")
        if section.intro:
            parts.append(f"<p>{section.intro}</p>")
        if section.missing:
            parts.append(f"<p>Not shown: {html.escape(section.missing)}</p>")
        parts.extend(block.html for block in section.blocks)
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _contents(study: Study) -> str:
    parts = [f"{len(study.runs)} measured cells", f"{len(study.traces)} traces"]
    if not study.servers.empty:
        parts.insert(1, f"{len(study.servers)} server cells")
    parts.append(f"simulation.csv with {len(study.simulation)} rows" if study.simulation is not None
                 else "no simulation.csv")
    if study.profile is not None:
        parts.append(f"profile.csv with {len(study.profile)} rows")
    parts.append("cost_model.toml" if study.cost_model is not None else "no cost_model.toml")
    return ", ".join(parts)
