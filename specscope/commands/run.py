"""`specscope run`: generate with the built-in engine, plain or speculative, and record what happened.

    specscope run --workload code-edit --method ngram --k 5 --batch-size 4 --max-new-tokens 128 -o out/ngram
    specscope run --workload chat --method draft --draft-model self:8 --k 3 -o out/draft
    specscope run --workload chat --method none -o out/base        # the baseline speedups divide by

Writes DIR/requests.jsonl (one record per request, written as requests finish; see
`specscope/engine/results.py`) and DIR/summary.json (throughput, mean acceptance length, acceptance
rate, time breakdown, peak memory and the settings). Prints a table; the last line is JSON.
Ctrl-C keeps the finished requests and writes a summary marked `"partial": true`.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.commands.engine_common import (
    DeviceOpt,
    DraftModelOpt,
    MaxNewOpt,
    ModelOpt,
    QuantOpt,
    NgramMaxOpt,
    NgramMinOpt,
    OutputDirOpt,
    ThreadsOpt,
    build_requests,
    check_output_dir,
    load_target,
    load_workload_prompts,
    proposer_options,
    setup_torch,
    stop_token_ids,
)
from specscope.fileio import atomic_open, write_json_atomic
from specscope.workloads.options import (
    DEFAULT_WORKLOAD,
    ChatOpt,
    FieldOpt,
    NumPromptsOpt,
    PromptFieldOpt,
    SeedOpt,
    SourceOpt,
    WorkloadOpt,
)


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    output: OutputDirOpt,
    model: ModelOpt = None,
    workload: WorkloadOpt = DEFAULT_WORKLOAD,
    source: SourceOpt = None,
    prompt_field: PromptFieldOpt = None,
    field: FieldOpt = None,
    num_prompts: NumPromptsOpt = None,
    seed: SeedOpt = 0,
    chat: ChatOpt = None,
    method: Annotated[str, typer.Option("--method", help="none, ngram or draft.")] = "none",
    k: Annotated[int, typer.Option("--k", help="Draft tokens proposed per step.")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Sequences decoded at once.")] = 1,
    max_new_tokens: MaxNewOpt = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature > 0).")] = 1.0,
    draft_model: DraftModelOpt = None,
    ngram_min: NgramMinOpt = 3,
    ngram_max: NgramMaxOpt = 7,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
) -> None:
    """Generate with plain decoding or speculative decoding; write per-request records and a summary."""
    from specscope.engine.engine import Engine, EngineConfig
    from specscope.engine.proposers import build_proposer
    from specscope.engine.results import request_record, summarize
    from specscope.workloads import bleu4_overlap

    # Validate everything cheap before loading anything.
    check_output_dir(output)
    torch_device = setup_torch(device, threads)
    options = proposer_options(method, k, temperature, top_p, ngram_min, ngram_max, draft_model, torch_device)
    prompts = load_workload_prompts(workload, source, prompt_field, field, num_prompts, seed)

    target, tokenizer, model_name = load_target(model, torch_device, quant)
    proposer = build_proposer(method, options, target=target, tokenizer=tokenizer)
    requests = build_requests(prompts, tokenizer, chat, max_new_tokens)
    config = EngineConfig(k=k if method != "none" else 0, batch_size=batch_size,
                          max_new_tokens=max((r.max_new_tokens for r in requests), default=1), temperature=temperature, top_p=top_p, seed=seed)
    engine = Engine(target, proposer, config, stop_token_ids(target, tokenizer))

    def overlap(prompt, text):
        return round(bleu4_overlap(prompt.text, text), 6) if prompt is not None else None

    finished, partial = [], False
    err_console = Console(stderr=True)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with atomic_open(output / "requests.jsonl") as fh, _progress(err_console) as progress:
        task = progress.add_task(f"{proposer.label} b={batch_size}", total=len(requests), tokens="")
        try:
            for seq in engine.generate(requests):
                fh.write(json.dumps(request_record(seq, tokenizer, overlap), separators=(",", ":")) + "\n")
                finished.append(seq)
                if seq.error:
                    err_console.print(f"[yellow]request {seq.request.id}: {seq.error}[/yellow]")
                made = sum(s.num_output for s in finished)
                progress.update(task, advance=1, tokens=f"{made / (time.perf_counter() - start):.1f} tok/s")
        except KeyboardInterrupt:
            partial = True
    wall = time.perf_counter() - start

    summary = summarize(finished, engine.steps, wall)
    summary.update(
        command="run",
        partial=partial,
        model=model_name,
        method=proposer.label,
        proposer=method,
        k=config.k,
        batch_size=batch_size,
        workload=prompts[0].workload if prompts else workload,
        source=prompts[0].source if prompts else source,
        num_prompts=len(requests),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        threads=_threads(),
        device=str(torch_device),
        dtype=str(target.dtype).replace("torch.", ""),
        weight_format=getattr(target, "weight_format", "dense"),
        kv_cache_mb=engine.kv_cache_nbytes() / 2**20,
        proposer_mb=proposer.nbytes() / 2**20,
        model_mb=target.weight_nbytes() / 2**20,
        output_dir=str(output),
    )
    write_json_atomic(output / "summary.json", summary)
    _print_table(summary)
    print(json.dumps(summary), flush=True)
    if partial:
        raise typer.Exit(130)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tokens]}"),
        TimeElapsedColumn(), console=console, transient=True,
    )


def _fmt(value, spec=".3f") -> str:
    return "-" if value is None else format(value, spec)


def _print_table(s: dict) -> None:
    title = f"specscope run: {s['method']}, k={s['k']}, batch {s['batch_size']}, {s['workload']}"
    if s["partial"]:
        title += " (PARTIAL: interrupted)"
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    bd = s["time_breakdown_s"]
    total = sum(bd.values()) or 1.0
    rows = [
        ("requests completed", f"{s['num_completed']}/{s['num_prompts']}" + (f" ({s['num_errors']} failed)" if s["num_errors"] else "")),
        ("generated tokens", str(s["generated_tokens"])),
        ("wall seconds", _fmt(s["wall_seconds"], ".2f")),
        ("throughput (tok/s)", _fmt(s["throughput_tok_s"], ".2f")),
        ("mean acceptance length", _fmt(s["mean_acc_len"])),
        ("acceptance rate", _fmt(s["acceptance_rate"])),
        *[(f"{phase} s (share)", f"{bd[phase]:.2f} ({bd[phase] / total:.0%})") for phase in bd],
        ("peak RSS (MiB)", _fmt(s["peak_rss_mb"], ".0f")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    Console().print(f"wrote {s['output_dir']}/requests.jsonl and summary.json")
