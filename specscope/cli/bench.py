"""`specscope bench`: measure an OpenAI-compatible server (vLLM, SGLang, TensorRT-LLM, llama.cpp, `specscope serve`).

    specscope bench --endpoint http://127.0.0.1:8000/v1 --model smollm2-135m --workload code-edit -n 32 \\
        --concurrency 1,4,16 --label sd-ngram-k3 -o out
    specscope bench ... --request-rate 0.5,2,inf --slo-ttft-ms 500 --slo-itl-ms 50
    specscope bench ... --baseline-endpoint http://127.0.0.1:8001/v1     # the same model without SD: speedups
    specscope report out

Each concurrency level (or request rate) is one cell in the study-folder format: out/runs/<label>-c16/
requests.jsonl and summary.json, with TTFT, inter-token and end-to-end latency percentiles, output
tokens/s, requests/s, goodput under the SLOs, and SD acceptance from the engine's own per-request payload
or, failing that, its /metrics counters (`specscope/study/bench.py`). Prompts go through
/v1/chat/completions (the server's chat template) or, with --api completions, as raw text. Failed
requests (HTTP errors, timeouts, malformed answers) print one line each and are recorded, never fatal;
Ctrl-C keeps the finished cells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.cli.options import (FieldOpt, JsonOpt, MaxNewOpt, NumPromptsOpt, PromptFieldOpt, SeedOpt, SourceOpt,
                                   WorkloadOpt, check_output_dir, print_json)
from specscope.errors import SpecscopeError
from specscope.settings import CLI_NAMES, DEFAULT_WORKLOAD, RunSettings

APIS = ("chat", "completions")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    output: Annotated[Path, typer.Option("--output", "-o", help="Study folder for the cells (runs/<cell>/...).")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The server's OpenAI base URL, e.g. "
                                          "http://127.0.0.1:8000/v1.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name the server serves (see its /v1/models).")],
    workload: WorkloadOpt = DEFAULT_WORKLOAD,
    source: SourceOpt = None,
    prompt_field: PromptFieldOpt = None,
    field: FieldOpt = None,
    num_prompts: NumPromptsOpt = None,
    seed: SeedOpt = 0,
    max_new_tokens: MaxNewOpt = None,
    concurrency: Annotated[Optional[str], typer.Option(
        "--concurrency", help="Requests in flight, one cell each: e.g. 1,4,16 (default 1).")] = None,
    request_rate: Annotated[Optional[str], typer.Option(
        "--request-rate", help="Or open-loop Poisson arrivals, requests/s, one cell each: e.g. 0.5,2,inf.")] = None,
    label: Annotated[str, typer.Option("--label", help="Names the cells (<label>-c16) and the trace.")] = "server",
    proposer: Annotated[Optional[str], typer.Option(
        "--proposer", help="What the server drafts with (ngram, eagle, draft, ...), as its trace names it "
        "(default: what specscope serve reports, else the label).")] = None,
    api: Annotated[str, typer.Option("--api", help="chat (/v1/chat/completions, the server's chat template) or "
                                     "completions (raw prompt text).")] = "chat",
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Stream (TTFT and inter-token latency) or "
                                         "not.")] = True,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds a request may take before it counts as "
                                             "failed.")] = 300.0,
    slo_ttft_ms: Annotated[Optional[float], typer.Option("--slo-ttft-ms", help="Goodput: time to first token "
                                                         "within this.")] = None,
    slo_itl_ms: Annotated[Optional[float], typer.Option("--slo-itl-ms", help="Goodput: mean inter-token latency "
                                                        "within this.")] = None,
    baseline_endpoint: Annotated[Optional[str], typer.Option(
        "--baseline-endpoint", help="The same model served without SD: each level runs there first (speedup).")] = None,
    baseline_cells: Annotated[Optional[Path], typer.Option(
        "--baseline-cells", help="Or the -o folder of an earlier bench against the server without SD.")] = None,
    extensions: Annotated[bool, typer.Option(
        "--extensions/--no-extensions", help="Ask for token ids and SD details (vLLM return_token_ids, SGLang "
        "return_spec_tokens_details); servers ignore fields they do not know.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Load a server with a workload at several concurrencies or rates; record latency, throughput and SD acceptance."""
    from specscope.study.bench import BenchOptions, bench as bench_job, parse_levels
    from specscope.study.prompts import run_prompts

    err = Console(stderr=True)
    check_output_dir(output)
    if api not in APIS:
        raise SpecscopeError(f"--api {api}: use chat or completions")
    if timeout_s <= 0:
        raise SpecscopeError(f"--timeout {timeout_s}: must be > 0 seconds")
    for flag, value in (("--slo-ttft-ms", slo_ttft_ms), ("--slo-itl-ms", slo_itl_ms)):
        if value is not None and not value > 0:
            raise SpecscopeError(f"{flag} {value}: must be > 0 milliseconds")
    if baseline_endpoint and baseline_cells:
        raise SpecscopeError("--baseline-endpoint and --baseline-cells: give one baseline")
    levels = parse_levels(concurrency, request_rate)
    settings = RunSettings.build(workload=workload, source=source, prompt_field=prompt_field,
                                 fields=tuple(field or ()), num_prompts=num_prompts, seed=seed,
                                 max_new_tokens=max_new_tokens).check(CLI_NAMES)
    prompts = run_prompts(settings)
    options = BenchOptions(endpoint=endpoint, model=model, levels=levels, api=api, label=label, proposer=proposer,
                           baseline_endpoint=baseline_endpoint, baseline_cells=baseline_cells, stream=stream,
                           timeout_s=timeout_s, slo_ttft_ms=slo_ttft_ms, slo_itl_ms=slo_itl_ms,
                           extensions=extensions, seed=seed)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[tokens]}"), TimeElapsedColumn(), console=err, transient=True)
    task = None

    def on_cell_start(name: str, total: int) -> None:  # the endpoints answered: the bar starts with the first cell
        nonlocal task
        if task is None:
            progress.start()
        else:
            progress.remove_task(task)
        task = progress.add_task(name, total=total, tokens="")

    def on_request(record, made, seconds) -> None:
        progress.update(task, advance=1, tokens=f"{made / seconds:.1f} tok/s" if seconds > 0 else "")

    def on_problem(line: str) -> None:
        progress.console.print(f"[yellow]{line}[/yellow]")

    try:
        result = bench_job(settings, options, output, prompts, on_cell_start, on_request, on_problem)
    finally:
        if task is not None:
            progress.stop()
    _print_table(result.cells, output)
    for made in result.traces:
        if made.get("path"):
            Console().print(f"trace: {made['path']} ({made['requests']} requests from {made['cell']}, censored at "
                            f"k + 1; {made['skipped']} without per-step arrays skipped)")
        else:
            Console().print(f"no trace: {made['reason']}")
    print_json(json_out, {"cells": result.cells, "traces": result.traces, "interrupted": result.interrupted})
    if result.interrupted:
        raise typer.Exit(130)


def _ms(stats: dict | None, key: str) -> str:
    return "-" if not stats or stats.get(key) is None else f"{stats[key]:.0f}"


def _print_table(cells: list[dict], output: Path) -> None:
    if not cells:
        return
    first = cells[0]
    title = f"specscope bench: {first['model']} at {first['endpoint']} ({first['engine']}), {first['workload']}"
    table = Table(title=title, title_justify="left")
    for name in ("cell", "ok/sent", "out tok/s", "req/s", "TTFT p50/p99 ms", "ITL p50/p99 ms", "E2E p50 ms",
                 "mean acc len", "acceptance from"):
        table.add_column(name, justify="left" if name in ("cell", "acceptance from") else "right")
    for s in cells:
        name = Path(s["output_dir"]).name + (" (partial)" if s["partial"] else "")
        ok = f"{s['num_completed']}/{s['num_requests']}" + (f" ({s['num_errors']} failed)" if s["num_errors"] else "")
        acc = "-" if s.get("mean_acc_len") is None else f"{s['mean_acc_len']:.3f}"
        table.add_row(name, ok, f"{s['output_throughput_tok_s'] or 0:.1f}", f"{s['request_throughput_rps'] or 0:.2f}",
                      f"{_ms(s['ttft_ms'], 'p50')}/{_ms(s['ttft_ms'], 'p99')}",
                      f"{_ms(s['itl_ms'], 'p50')}/{_ms(s['itl_ms'], 'p99')}", _ms(s["e2e_ms"], "p50"), acc,
                      s.get("sd_source") or ("-" if s["role"] == "baseline" else "none reported"))
    console = Console()
    console.print(table)
    for s in cells:
        for note in s.get("notes") or []:
            console.print(f"note ({Path(s['output_dir']).name}): {note}")
    console.print(f"wrote {len(cells)} cells under {output}/runs; see them with `specscope report {output}`")
