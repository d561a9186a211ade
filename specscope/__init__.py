"""specscope: does speculative decoding speed up my model, on my workload, at my batch size?

Run SD methods on a real engine, replay acceptance traces through a fitted cost model for
fixed-k / oracle / combine bounds, and report the study's figures as a static HTML page.
See README.md for the commands and docs/design.md for the layout, the glossary and the file formats.
"""

__version__ = "0.1.0"
