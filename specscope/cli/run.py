"""`specscope run`: generate with the built-in engine, plain or speculative, and record what happened.

    specscope run --workload code-edit --method ngram --k 5 --batch-size 4 --max-new-tokens 128 -o out/ngram
    specscope run --workload chat --method draft --draft-model self:8 --k 3 -o out/draft
    specscope run --workload chat --method none -o out/base        # the baseline speedups divide by
    specscope run --workload chat --method draft --draft-model self:8 --tree 3x2 -o out/tree   # draft tree

Writes DIR/requests.jsonl (one record per request, written as requests finish; see
`specscope/engine/results.py`) and DIR/summary.json (throughput, mean acceptance length, acceptance
rate, time breakdown, peak memory and the settings). Prints a table; the last line is JSON.
Ctrl-C keeps the finished requests and writes a summary marked `"partial": true`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from specscope.cli.options import (
    DeviceOpt,
    HEAD_METHODS,
    DraftModelOpt,
    HeadOpt,
    MaxNewOpt,
    ModelOpt,
    QuantOpt,
    NgramMaxOpt,
    NgramMinOpt,
    OutputDirOpt,
    ThreadsOpt,
    TreeOpt,
    build_requests,
    check_output_dir,
    load_target,
    load_workload_prompts,
    proposer_options,
    setup_torch,
    stop_token_ids,
)
from specscope.costs.presets import ADAPTIVE_DEFAULT
from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open, write_json_atomic
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
    method: Annotated[str, typer.Option("--method", help="none, ngram, draft, eagle, eagle3 or mtp.")] = "none",
    k: Annotated[str, typer.Option("--k", help="Draft tokens proposed per step, or 'adaptive' (per sequence and "
                                   "step from its acceptance and --cost-model; --method a,b also picks the proposer).")] = "3",
    cost_model: Annotated[Optional[str], typer.Option(
        "--cost-model", help="With --k adaptive: cost-model preset or .toml fitted on this machine "
        "(specscope profile + fit-cost). Default: the smollm2-135m-cpu preset.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Sequences decoded at once.")] = 1,
    max_new_tokens: MaxNewOpt = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature > 0).")] = 1.0,
    draft_model: DraftModelOpt = None,
    head: HeadOpt = None,
    tree: TreeOpt = None,
    ngram_min: NgramMinOpt = 3,
    ngram_max: NgramMaxOpt = 7,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
) -> None:
    """Generate with plain decoding or speculative decoding; write per-request records and a summary."""
    # Validate everything cheap before loading anything.
    check_output_dir(output)
    torch_device = setup_torch(device, threads)
    k, adaptive = parse_k(k, method, cost_model)
    names = adaptive_methods(method) if adaptive else [method]
    method = ",".join(names)
    if draft_model is not None and "draft" not in names and set(names) & set(HEAD_METHODS):
        raise SpecscopeError(f"--draft-model is the draft model of --method draft; give the {method} head folder "
                             "with --head DIR")
    for name in names:
        options = proposer_options(name, k, temperature, top_p, ngram_min, ngram_max, draft_model, torch_device, tree,
                                   head)
    prompts = load_workload_prompts(workload, source, prompt_field, field, num_prompts, seed)

    target, tokenizer, model_name = load_target(model, torch_device, quant)
    spec = RunSpec(method, k, batch_size, max_new_tokens, temperature, top_p, seed, chat, workload, source,
                   cost_model=adaptive)
    err_console = Console(stderr=True)
    with _progress(err_console) as progress:
        task = progress.add_task(f"{method} b={batch_size}", total=len(prompts), tokens="")

        def on_request(seq, made, seconds):
            if seq.error:
                err_console.print(f"[yellow]request {seq.request.id}: {seq.error}[/yellow]")
            progress.update(task, advance=1, tokens=f"{made / seconds:.1f} tok/s" if seconds > 0 else "")

        summary = measure(target, tokenizer, model_name, prompts, spec, options, output, on_request=on_request)
    _print_table(summary)
    print(json.dumps(summary), flush=True)
    if summary["partial"]:
        raise typer.Exit(130)


@dataclass
class RunSpec:
    """The settings of one measured run besides the proposer's options (see `run` for their meaning)."""

    method: str = "none"
    k: int = 3
    batch_size: int = 1
    max_new_tokens: int | None = None  # None: each prompt's workload limit
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    chat: bool | None = None
    workload: str = DEFAULT_WORKLOAD
    source: str | None = None
    cost_model: object | None = None  # a CostModel: --k adaptive (k is then the cap)


ADAPTIVE_K_CAP = 8  # most drafts per step under --k adaptive


def parse_k(k: str, method: str, cost_model: str | None):
    """(k, CostModel or None) from --k: an integer, or 'adaptive' (k = the cap; loads the cost model)."""
    from specscope.costs.presets import load_cost_model

    if k.strip() == "adaptive":
        if method == "none":
            raise SpecscopeError("--k adaptive needs a proposer: e.g. --method ngram or --method ngram,draft")
        adaptive_methods(method)  # a bad list fails before the note below
        if cost_model is None:
            Console(stderr=True).print(
                f"note: --k adaptive: no --cost-model given; using the {ADAPTIVE_DEFAULT} preset (a 2-core CPU). "
                "Fit this machine's: specscope profile -o p.csv && specscope fit-cost p.csv -o cost.toml")
        return ADAPTIVE_K_CAP, load_cost_model(cost_model or ADAPTIVE_DEFAULT)
    if "," in method:
        raise SpecscopeError(f"--method {method}: several proposers need --k adaptive (it picks one per step)")
    try:
        return int(k), None
    except ValueError:
        raise SpecscopeError(f"--k '{k}': give a number of draft tokens (e.g. --k 3) or 'adaptive'") from None


def adaptive_methods(method: str) -> list[str]:
    """The proposers `--k adaptive` picks among: 'ngram, draft' -> ['ngram', 'draft']."""
    names = [n.strip() for n in method.split(",")]
    if any(not n for n in names):
        raise SpecscopeError(f"--method '{method}' has an empty name; write e.g. --method ngram,draft")
    if len(set(names)) != len(names):
        raise SpecscopeError(f"--method '{method}' names a proposer twice; list each once, e.g. --method ngram,draft")
    if "none" in names and len(names) > 1:
        raise SpecscopeError(f"--method '{method}': 'none' is plain decoding and takes no other proposer; "
                             "--k adaptive already decodes plainly where drafting does not pay")
    return names


def build_run_proposer(spec: RunSpec, options, target, tokenizer):
    """The engine's proposer: `spec.method`, or with a cost model the adaptive wrapper over its proposers."""
    from specscope.engine.proposers import build_proposer

    if spec.cost_model is None:
        return build_proposer(spec.method, options, target=target, tokenizer=tokenizer)
    from specscope.engine.adaptive import AdaptiveProposer

    subs = {n: build_proposer(n, options, target=target, tokenizer=tokenizer) for n in spec.method.split(",")}
    return AdaptiveProposer(subs, spec.cost_model)


def measure(target, tokenizer, model_name: str, prompts, spec: RunSpec, options, output: Path,
            on_request: Callable | None = None, keep_partial: bool = True,
            summary_extra: Callable[[], dict] | None = None) -> dict:
    """Run `prompts` through the engine on a loaded target; write output/requests.jsonl and summary.json.

    Shared by `specscope run` and `specscope sweep` (which loads the target once for many cells).
    `on_request(seq, tokens_so_far, seconds_so_far)` is called as each request finishes.
    Ctrl-C: with `keep_partial` the finished requests are kept and the summary says `"partial": true`;
    without it the KeyboardInterrupt propagates (the sweep discards the unfinished cell).
    `summary_extra()` adds fields to the summary just before it is written. Returns the summary.
    """
    from specscope.engine.engine import Engine, EngineConfig
    from specscope.engine.results import request_record, summarize
    from specscope.workloads import bleu4_overlap

    proposer = build_run_proposer(spec, options, target, tokenizer)
    requests = build_requests(prompts, tokenizer, spec.chat, spec.max_new_tokens)
    config = EngineConfig(k=spec.k if spec.method != "none" else 0, batch_size=spec.batch_size,
                          max_new_tokens=max((r.max_new_tokens for r in requests), default=1),
                          temperature=spec.temperature, top_p=spec.top_p, seed=spec.seed, tree=options.tree)
    engine = Engine(target, proposer, config, stop_token_ids(target, tokenizer))

    def overlap(prompt, text):
        return round(bleu4_overlap(prompt.text, text), 6) if prompt is not None else None

    finished, partial, made = [], False, 0
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with atomic_open(output / "requests.jsonl") as fh:
        try:
            for seq in engine.generate(requests):
                fh.write(json.dumps(request_record(seq, tokenizer, overlap), separators=(",", ":")) + "\n")
                finished.append(seq)
                made += seq.num_output if not seq.error else 0
                if on_request is not None:
                    on_request(seq, made, time.perf_counter() - start)
        except KeyboardInterrupt:
            if not keep_partial:
                raise
            partial = True
    wall = time.perf_counter() - start

    summary = summarize(finished, engine.steps, wall)
    summary.update(
        command="run",
        partial=partial,
        model=model_name,
        method=proposer.label,
        proposer=spec.method,
        k=config.k,
        adaptive=spec.cost_model is not None,
        cost_model=spec.cost_model.name if spec.cost_model is not None else None,
        adaptive_choices=proposer.choices() if spec.cost_model is not None else None,
        tree=options.tree.label if options.tree is not None else None,
        batch_size=spec.batch_size,
        workload=prompts[0].workload if prompts else spec.workload,
        source=prompts[0].source if prompts else spec.source,
        num_prompts=len(requests),
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        seed=spec.seed,
        threads=_threads(),
        device=str(target.device),
        dtype=str(target.dtype).replace("torch.", ""),
        weight_format=getattr(target, "weight_format", "dense"),
        kv_cache_mb=engine.kv_cache_nbytes() / 2**20,
        proposer_mb=proposer.nbytes() / 2**20,
        model_mb=target.weight_nbytes() / 2**20,
        output_dir=str(output),
    )
    if summary_extra is not None:
        summary.update(summary_extra())
    write_json_atomic(output / "summary.json", summary)
    return summary


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
