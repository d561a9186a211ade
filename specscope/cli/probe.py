"""`specscope probe`: measure this machine (copy bandwidth, fp32 matmul FLOP rate) as a hardware spec.

    specscope probe                         # print the figures (a few seconds)
    specscope probe -o my-cpu.toml          # and write them as a hardware TOML
    specscope cost-model --model model.gguf --hardware my-cpu.toml -o cpu-cost.toml

What is measured and how: specscope/study/probe.py. `--json` adds one JSON line at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)


def probe(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Hardware TOML to write."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads to measure with (default: "
                                          "torch's choice, as the engine uses)."),
    name: str = typer.Option("local-cpu", "--name", help="Name of the hardware spec."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line."),
) -> None:
    """Measure this CPU's memory bandwidth and matmul FLOP rate; print them, or write a hardware TOML."""
    from specscope.formats.files import check_output_file
    from specscope.formats.hardware import hardware_to_toml_dict, write_hardware
    from specscope.study.probe import probe_cpu

    if output is not None:
        check_output_file(output, "my-cpu.toml")
    spec = probe_cpu(threads, name)
    table = Table(title=f"specscope probe: {spec.description}", title_justify="left")
    table.add_column("measured")
    table.add_column("value", justify="right")
    table.add_row("copy bandwidth (read + write)", f"{spec.bandwidth / 1e9:.1f} GB/s")
    table.add_row("fp32 matmul", f"{spec.flops['fp32'] / 1e9:.1f} GFLOP/s")
    table.add_row("memory (OS)", f"{spec.memory_bytes / 1e9:.1f} GB")
    table.add_row("threads", str(spec.provenance["threads"]))
    console = Console()
    console.print(table)
    if output is not None:
        write_hardware(output, spec, header_comment="Measured by `specscope probe` (specscope/study/probe.py).")
        console.print(f"wrote {output}; price a model on it with `specscope cost-model --model M --hardware {output} "
                      "-o cost.toml`")
    if as_json:
        print(json.dumps({"command": "probe", "output": str(output) if output else None,
                          **hardware_to_toml_dict(spec)}), flush=True)
