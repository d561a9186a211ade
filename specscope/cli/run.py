"""`specscope run`: generate with the built-in engine, plain or speculative, and record what happened.

    specscope run --workload code-edit --method ngram --k 5 --batch-size 4 --max-new-tokens 128 -o out/ngram
    specscope run --workload chat --method draft --draft-model self:16 --k 3 -o out/draft
    specscope run --workload chat --method none -o out/base        # the baseline speedups divide by
    specscope run --workload chat --method draft --tree 3x2 -o out/tree   # a draft tree
    specscope run --workload chat --method eagle3 --tree dynamic:21 -o out/eagle3-tree   # an EAGLE-2 style tree
    specscope run --workload code-edit --method ngram,draft --k adaptive -o out/adaptive

Writes DIR/requests.jsonl (one record per request, written as requests finish) and DIR/summary.json
(`specscope/formats/`). Prints a table (`--json`: and the summary as one JSON line). Ctrl-C keeps the
finished requests and writes a summary marked `"partial": true`. A run in which no request completed (every
prompt too long for the model, say) keeps its files and exits 2 with one line saying why.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.cli.options import (ChatOpt, DeviceOpt, DraftModelOpt, FieldOpt, HeadOpt, JsonOpt, MaxNewOpt,
                                   ModelOpt, NgramMaxOpt, NgramMinOpt, NumPromptsOpt, OutputDirOpt, PromptFieldOpt,
                                   QuantOpt, SeedOpt, SourceOpt, ThreadsOpt, TreeOpt, WorkloadOpt, check_output_dir,
                                   print_json, run_settings)
from specscope.errors import SpecscopeError, shorten
from specscope.formats.layout import REQUESTS_JSONL, SUMMARY_JSON
from specscope.settings import ADAPTIVE_COST_MODEL, DEFAULT_WORKLOAD


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
    method: Annotated[str, typer.Option("--method", help="none, ngram, draft, eagle, eagle3 or mtp.")] = "none",
    k: Annotated[str, typer.Option("--k", help="Draft tokens proposed per step, or 'adaptive' (per sequence and "
                                   "step from its acceptance and --cost-model; --method a,b also picks the proposer).")] = "3",
    cost_model: Annotated[Optional[str], typer.Option(
        "--cost-model", help="With --k adaptive: cost-model preset or .toml fitted on this machine "
        f"(specscope profile + fit-cost). Default: the {ADAPTIVE_COST_MODEL} preset.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Sequences decoded at once.")] = 1,
    max_new_tokens: MaxNewOpt = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature > 0).")] = 1.0,
    draft_model: DraftModelOpt = None,
    head: HeadOpt = None,
    tree: TreeOpt = None,
    ngram_min: NgramMinOpt = None,
    ngram_max: NgramMaxOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Generate with plain decoding or speculative decoding; write per-request records and a summary."""
    from specscope.study.engine_backend import EngineBackend
    from specscope.study.measure import measure
    from specscope.study.prompts import run_prompts

    err_console = Console(stderr=True)
    check_output_dir(output, (REQUESTS_JSONL, SUMMARY_JSON))  # everything cheap is checked before anything loads
    settings = run_settings(
        model=model, device=device, threads=threads, quant=quant, workload=workload, source=source,
        prompt_field=prompt_field, field=field, num_prompts=num_prompts, seed=seed, chat=chat, method=method, k=k,
        cost_model=cost_model, batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=temperature,
        top_p=top_p, draft_model=draft_model, head=head, tree=tree, ngram_min=ngram_min, ngram_max=ngram_max,
        console=err_console)
    prompts = run_prompts(settings)
    backend = EngineBackend(settings)
    backend.load()
    with _progress(err_console) as progress:
        task = progress.add_task(f"{settings.proposer.method} b={batch_size}", total=len(prompts), tokens="")

        def on_request(record, made, seconds):
            if record.get("error"):
                err_console.print(f"[yellow]request {record['id']}: {record['error']}[/yellow]", soft_wrap=True)
            progress.update(task, advance=1, tokens=f"{made / seconds:.1f} tok/s" if seconds > 0 else "")

        summary = measure(backend, settings, prompts, output, on_request=on_request)
    _print_table(summary)
    _warn_if_busy(err_console, summary)
    print_json(json_out, summary)
    if summary["partial"]:
        raise typer.Exit(130)
    if summary["num_completed"] == 0:
        raise SpecscopeError(f"no request completed: all {summary['num_requests']} failed (the first: "
                             f"{_first_error(output)}); the records are in {output / REQUESTS_JSONL} and "
                             f"{output / SUMMARY_JSON}")


def _first_error(output) -> str:
    """The first failed request's error, from the records just written."""
    from specscope.formats.requests import read_requests

    for _, record in read_requests(output / REQUESTS_JSONL):
        if record.get("error"):
            return shorten(record["error"], 160)
    return "no error recorded"


def _warn_if_busy(console: Console, summary: dict) -> None:
    """One warning line when the machine was busy during the run (its timings are then slower than the engine);
    none when no request completed (there is no throughput to doubt)."""
    from specscope.study.contention import describe

    contention = summary.get("contention")
    if isinstance(contention, dict) and contention.get("busy") and summary.get("num_completed"):
        console.print(f"[yellow]warning: the machine was busy during this run ({describe(contention)}); its "
                      "throughput is lower than the engine's — measure again on a quiet machine[/yellow]",
                      soft_wrap=True)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tokens]}"),
        TimeElapsedColumn(), console=console, transient=True,
    )


def _fmt(value, spec=".3f") -> str:
    return "-" if value is None else format(value, spec)


def _print_table(s: dict) -> None:
    title = f"specscope run: {s['label']}, k={s['k']}, batch {s['batch_size']}, {s['workload']}"
    if s.get("tree"):
        title += f", tree {s['tree']}"
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
        ("decode-phase throughput (tok/s)", _fmt(s["decode_throughput_tok_s"], ".2f")),
        ("mean acceptance length", _fmt(s["mean_acc_len"])),
        ("acceptance rate", _fmt(s["acceptance_rate"])),
        *[(f"{phase} s (share)", f"{bd[phase]:.2f} ({bd[phase] / total:.0%})") for phase in bd],
        ("peak RSS (MiB)", _fmt(s["peak_rss_mb"], ".0f")),
    ]
    choices = s.get("adaptive_choices")
    if choices and choices["sequence_steps"]:
        drafted = [f"{name} {c['share']:.0%} (mean k {c['mean_k']:.1f})" for name, c in choices["proposers"].items()
                   if c["mean_k"] is not None]
        rows.append(("adaptive: sequence-steps drafting", ", ".join(drafted) or "none"))
        rows.append(("adaptive: sequence-steps not drafting", f"{choices['no_draft_share']:.0%}"))
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    Console().print(f"wrote {s['output_dir']}/requests.jsonl and summary.json")
