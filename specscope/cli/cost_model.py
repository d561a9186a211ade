"""`specscope cost-model`: price a model on hardware you may not have; show any cost model's step times.

    specscope cost-model --model llama-3.1-70b --hardware h100-sxm --tp 4 -o c.toml
    specscope cost-model --model config.json --hardware my-gpu.toml --dtype fp8 --draft draft=llama-3.2-1b -o c.toml
    specscope cost-model --model model.gguf --hardware local -o cpu.toml           # `local`: probe this CPU now
    specscope cost-model show c.toml --tokens 1,64,512 --kv 0,8192,65536 [-o table.csv]
    specscope cost-model calibrate --model llama-3.1-8b --hardware h100-sxm --against llama3.1-8b-h100
    specscope cost-model list                                                       # shipped models and hardware

Building writes an analytic (roofline) cost model that `simulate` and sweeps read like any other;
a configuration that does not fit in memory stops with one line saying by how much. The forms and
constants: specscope/costs/analytic.py, pricing.py, memory.py and data/efficiency.toml.
`--json` adds one JSON line at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from specscope.costs.pricing import DEFAULT_DRAFT_K
from specscope.errors import SpecscopeError

SHOW_TOKENS = "1,8,64,512,2048"
SHOW_KV = "0,8192,65536"


def register(app: typer.Typer) -> None:
    group = typer.Typer(invoke_without_command=True, no_args_is_help=False, add_completion=False,
                        help="Build an analytic cost model from a model's shape and a hardware spec (show, "
                             "calibrate, list: see their --help).")
    group.callback()(build)
    group.command("show")(show)
    group.command("calibrate")(calibrate)
    group.command("list")(list_known)
    app.add_typer(group, name="cost-model")


def _int_list(text: str, flag: str, minimum: int) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        raise SpecscopeError(f"{flag} '{text}': give comma-separated integers >= {minimum}, e.g. {flag} 1,64,512")
    return values


def _hardware(name: str, threads: int | None):
    """A hardware spec by name or path; `local` probes this machine now."""
    from specscope.costs.hardware import LOCAL, load_hardware

    if name == LOCAL:
        from specscope.study.probe import probe_cpu

        spec = probe_cpu(threads)
        Console(stderr=True).print(f"probed this machine: {spec.bandwidth / 1e9:.1f} GB/s copy bandwidth, "
                                   f"{spec.flops['fp32'] / 1e9:.0f} GFLOP/s fp32 matmul, "
                                   f"{spec.provenance['threads']} threads")
        return spec
    return load_hardware(name)


def _shape(model: str, spec):
    """The model's shape; on a CPU the engine's default model is its GGUF file, as `specscope run` loads it."""
    from specscope.costs.shapes import load_shape
    from specscope.engine.loading import DEFAULT_MODEL, default_model_path

    if model == DEFAULT_MODEL and spec.kind == "cpu":
        try:
            return load_shape(default_model_path())
        except SpecscopeError:
            pass  # not installed: its published shape
    return load_shape(model)


def build(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Shipped model name (see `cost-model list`), a "
                                        "config.json or its folder, or a .gguf file."),
    hardware: Optional[str] = typer.Option(None, "--hardware", help="Shipped hardware name, a hardware .toml, or "
                                           "'local' (probe this machine)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Cost-model TOML to write."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel devices (weights and KV split, 2 all-reduces per layer)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="bf16, fp16, fp8, q4, f32, q8_0, q4_1, gguf "
                                        "(default: bf16 on a GPU; on a CPU the GGUF as stored, else f32)."),
    draft: Optional[List[str]] = typer.Option(None, "--draft", help="Which draft prices which proposer name of the "
                                              "traces: PROPOSER=DRAFT or DRAFT, DRAFT one of ngram, eagle, eagle3, mtp, "
                                              "draft (the target's usual draft model) or a model; repeat the option. "
                                              "Default: ngram, eagle, eagle3, mtp and draft."),
    draft_k: int = typer.Option(DEFAULT_DRAFT_K, "--draft-k", help="Draft tokens per step a chain drafter runs passes for."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="With --context: check that this many sequences fit (exit 2 if not)."),
    context: Optional[int] = typer.Option(None, "--context", min=1, help="With --batch: tokens per sequence (prompt + output)."),
    name: Optional[str] = typer.Option(None, "--name", help="Cost model name (default: the output file's stem)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads for --hardware local's probe."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line."),
) -> None:
    """Build an analytic cost model: MODEL on HARDWARE (x --tp) -> a cost-model TOML for simulate and sweeps."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [flag for flag, v in (("--model", model), ("--hardware", hardware), ("-o", output)) if v is None]
    if missing:
        raise SpecscopeError(f"cost-model needs {', '.join(missing)}; e.g. specscope cost-model --model llama-3.1-8b "
                             "--hardware h100-sxm -o c.toml (or `specscope cost-model show FILE`)")
    if (batch is None) != (context is None):
        raise SpecscopeError("--batch and --context go together: the KV cache holds batch x context tokens")
    from specscope.costs.pricing import analytic_cost_model
    from specscope.costs.presets import write_cost_model
    from specscope.formats.files import check_output_file

    check_output_file(output, "cost.toml")
    spec = _hardware(hardware, threads)
    shape = _shape(model, spec)
    priced = analytic_cost_model(shape, spec, tp=tp, precision=dtype, drafts=draft, draft_k=draft_k,
                                 name=name or output.stem, batch=batch, context=context)
    write_cost_model(output, priced.model, header_comment=(
        f"Analytic cost model written by `specscope cost-model`: {priced.model.description}.\n"
        "Form: specscope/costs/analytic.py (roofline; seconds). Provenance below."))
    console = Console()
    _print_built(console, priced, shape)
    console.print(f"wrote {output}")
    if as_json:
        print(json.dumps({"command": "cost-model", "output": str(output), "name": priced.model.name,
                          "memory": priced.memory.as_dict(),
                          "drafts": {p: (s.name if s else "ngram") for p, s in priced.drafts.items()},
                          "target_ms": {f"{n},{kv}": round(float(priced.model.target(n, kv)) * 1e3, 6)
                                        for n in (1, 64, 512) for kv in (0, 8192)}}), flush=True)


def _print_built(console: Console, priced, shape) -> None:
    model, plan = priced.model, priced.memory
    console.print(f"[bold]{model.description}[/bold]  ({shape.describe()})")
    console.print(plan.summary())
    examples = ", ".join(f"batch {b:,} x context {c:,}" for c, b in plan.examples())
    console.print(f"fits up to: {examples or 'less than one sequence of 2,048 tokens'}")
    target = model.target
    console.print(f"compute-bound above {target.compute_bound_from():,.0f} tokens per step "
                  "(matmuls take longer than reading the weights)")
    table = Table(title="predicted step times (ms)", title_justify="left")
    table.add_column("tokens", justify="right")
    for kv in (0, 8192, 65536):
        table.add_column(f"KV={kv:,}", justify="right")
    for n in (1, 8, 64, 512, 2048):
        table.add_row(f"{n:,}", *(f"{float(target(n, kv)) * 1e3:.2f}" for kv in (0, 8192, 65536)))
    console.print(table)
    drafts = Table(title="draft costs (the traces' proposer names)", title_justify="left")
    for col in ("proposer", "priced as", "ms for 1 seq, k=3, KV 8,192"):
        drafts.add_column(col, justify="right" if col.startswith("ms") else "left")
    for proposer, shape_ in priced.drafts.items():
        form = model.drafts[proposer]
        verify = float(target(4, 8192))
        ms = (form(verify) if form.scales_verify else form(4, 8192)) * 1e3
        drafts.add_row(proposer, "ngram: fraction of the verify step" if shape_ is None else shape_.describe(), f"{ms:.3f}")
    console.print(drafts)
    for note in priced.notes:
        console.print(f"note: {note}")


def show(
    cost_model: str = typer.Argument(..., metavar="MODEL", help="Cost-model TOML (fitted, preset or analytic) or a "
                                     "preset name."),
    tokens: str = typer.Option(SHOW_TOKENS, "--tokens", help="Tokens per step (comma-separated)."),
    kv: str = typer.Option(SHOW_KV, "--kv", help="KV tokens held by the batch (comma-separated)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the table as CSV "
                                          "(tokens, kv, target_ms)."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line."),
) -> None:
    """Print a cost model's predicted target step times (ms) over tokens per step x KV tokens."""
    from specscope.costs.presets import load_cost_model
    from specscope.formats.files import atomic_open, check_output_file

    token_list, kv_list = _int_list(tokens, "--tokens", 0), _int_list(kv, "--kv", 0)
    if output is not None:
        check_output_file(output, "step_times.csv")
    model = load_cost_model(cost_model)
    grid = [[float(model.target(n, k)) * 1e3 for k in kv_list] for n in token_list]
    table = Table(title=f"{model.name}: target step time (ms), form {model.target.form}", title_justify="left")
    table.add_column("tokens", justify="right")
    for k in kv_list:
        table.add_column(f"KV={k:,}", justify="right")
    for n, row in zip(token_list, grid):
        table.add_row(f"{n:,}", *(f"{v:.3f}" for v in row))
    console = Console()
    console.print(table)
    if model.description:
        console.print(model.description)
    if model.max_kv_tokens is not None:
        console.print(f"memory: {model.max_kv_tokens:,} KV tokens fit next to the weights")
    if output is not None:
        with atomic_open(output) as fh:
            fh.write("tokens,kv,target_ms\n")
            for n, row in zip(token_list, grid):
                for k, v in zip(kv_list, row):
                    fh.write(f"{n},{k},{v:.6g}\n")
        console.print(f"wrote {output}")
    if as_json:
        print(json.dumps({"command": "cost-model show", "name": model.name, "form": model.target.form,
                          "tokens": token_list, "kv": kv_list, "target_ms": grid}), flush=True)


def calibrate(
    model: str = typer.Option(..., "--model", "-m", help="The model the measurements are of (name, config or GGUF)."),
    hardware: str = typer.Option(..., "--hardware", help="Hardware name, .toml, or 'local' (probe now)."),
    against: str = typer.Option(..., "--against", help="A profile CSV (`specscope profile`) or a cost model "
                                "(preset name or TOML) of that model on that hardware."),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel devices the measurements used."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="The precision the measurements ran at."),
    hold: Optional[List[str]] = typer.Option(None, "--hold", help="Fix a constant instead of fitting it, NAME=VALUE "
                                             "(layer_latency_s, weight_bandwidth, kv_bandwidth, compute, overlap); "
                                             "default: layer_latency_s=0 on a GPU."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the hardware spec with these "
                                          "efficiencies in its [efficiency] table."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads for --hardware local's probe."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line."),
) -> None:
    """Fit the analytic model's efficiencies to measured step times of one model on one device."""
    from specscope.costs.calibrate import calibrate_against
    from specscope.formats.files import check_output_file

    if output is not None:
        check_output_file(output, "hardware.toml")
    held = {}
    for item in hold or []:
        key, sep, value = item.partition("=")
        try:
            held[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise SpecscopeError(f"--hold '{item}': write NAME=VALUE, e.g. --hold layer_latency_s=0")
    spec = _hardware(hardware, threads)
    shape = _shape(model, spec)
    result = calibrate_against(shape, spec, against, tp=tp, precision=dtype, hold=held or None)
    console = Console()
    table = Table(title=f"efficiencies of {shape.name} on {spec.name}, fitted to {against} ({result.calibration.points} "
                  "points)", title_justify="left")
    for col in ("constant", "value"):
        table.add_column(col, justify="left" if col == "constant" else "right")
    for key, value in result.efficiencies.as_toml().items():
        table.add_row(key, f"{value:.6g}")
    console.print(table)
    cal = result.calibration
    console.print(f"relative error of the target step time: mean {cal.mean_relative_error:.1%}, max "
                  f"{cal.max_relative_error:.1%}; best overlap {cal.overlap:g} (mean error at overlap 0: "
                  f"{cal.by_overlap.get(0.0, float('nan')):.1%}, at 1: {cal.by_overlap.get(1.0, float('nan')):.1%})")
    if output is not None:
        from dataclasses import replace

        from specscope.formats.hardware import write_hardware

        calibrated = replace(spec, efficiency=result.efficiencies.as_toml(),
                             provenance={**spec.provenance, "efficiency": f"specscope cost-model calibrate --model "
                                         f"{model} --against {against} (mean relative error "
                                         f"{cal.mean_relative_error:.3f})"})
        write_hardware(output, calibrated, header_comment="Hardware spec with calibrated efficiencies "
                       "(specscope cost-model calibrate).")
        console.print(f"wrote {output}")
    if as_json:
        print(json.dumps({"command": "cost-model calibrate", "efficiencies": result.efficiencies.as_toml(),
                          "mean_relative_error": cal.mean_relative_error,
                          "max_relative_error": cal.max_relative_error, "points": cal.points}), flush=True)


def list_known() -> None:
    """List the shipped model shapes, draft heads and hardware specs."""
    from specscope.costs.hardware import LOCAL, available_hardware, load_hardware
    from specscope.costs.shapes import shipped_shape, shipped_tables

    console = Console()
    models = Table(title="models (--model NAME; or a config.json / .gguf)", title_justify="left")
    for col in ("name", "kind", "parameters", "layers", "usual draft", "EAGLE-3 head"):
        models.add_column(col)
    for name in sorted(shipped_tables()):
        shape = shipped_shape(name)
        models.add_row(name, shape.kind, f"{shape.held_params() / 1e9:.2f} B", str(shape.num_layers),
                       shape.draft, shape.eagle3)
    console.print(models)
    hw = Table(title="hardware (--hardware NAME; or a .toml; or local)", title_justify="left")
    for col in ("name", "description", "memory GB", "bandwidth GB/s", "bf16 TFLOPS"):
        hw.add_column(col, justify="left" if col in ("name", "description") else "right")
    for name in available_hardware():
        spec = load_hardware(name)
        bf16 = spec.flops.get("bf16")
        hw.add_row(name, spec.description, f"{spec.memory_bytes / 1e9:.0f}", f"{spec.bandwidth / 1e9:,.0f}",
                   f"{bf16 / 1e12:,.0f}" if bf16 else "")
    hw.add_row(LOCAL, "this machine's CPU, measured now by `specscope probe`", "", "", "")
    console.print(hw)
