"""The report's sections, one builder per section: `builder(ctx: page.ReportContext) -> Section | list[Section]`.

`front` answers first (the verdict, latency, why speculation pays or not), `measured`, `traces` and
`simulated` hold the evidence. Their order in the page is `specscope.analysis.report.SECTION_BUILDERS`;
a new section is a builder here and one line there. `common` holds the settings lines every caption ends with.
"""
