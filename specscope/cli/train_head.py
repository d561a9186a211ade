"""`specscope train-head`: train an EAGLE, EAGLE-3 or MTP draft head for a target by self-distillation.

    specscope train-head --kind eagle3 -o heads/eagle3                 # default model, bundled workloads
    specscope train-head --kind eagle --model my.gguf --prompts mine.jsonl -o heads/eagle
    specscope train-head --kind eagle --synthetic 2000 -o heads/eagle      # + 2000 generated prompts
    specscope train-head --kind eagle --sampled-prompts 1500 -o heads/eagle  # + 1500 the target writes itself
    specscope run --method eagle3 --head heads/eagle3 -o out/eagle3

0. With --sampled-prompts N the target first writes N user requests itself (DATA.sampled.jsonl,
   reused by a rerun with the same model, N and --seed; `specscope/workloads/sampled.py`).
1. The target decodes every training prompt greedily (batched) and one teacher-forced pass records
   its features; this data is saved to `--data` (default DIR/data.pt) and reused by a rerun. The
   greedy outputs are kept after every round of 16 x --batch-size prompts (DATA.outputs.pt), so an
   interrupted run resumes them too.
2. The head trains on the target's own greedy choices (`specscope/engine/heads/training.py`), with a
   resumable checkpoint (DIR/train_state.pt) every --checkpoint-every steps: rerun the same command
   after an interruption and it continues.
3. DIR gets config.json + model.safetensors in the published layout of the kind (fp16) and
   TRAINING.json with the command, the settings, the held-out prompts and the final metrics.

By default every 4th prompt of each bundled workload is held out (`--holdout 4`; 0 trains on all), so
benchmarks can measure acceptance on prompts the head never saw. Prints a table; the last line is JSON.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from specscope.cli.options import DeviceOpt, ModelOpt, QuantOpt, ThreadsOpt, load_target, setup_torch, stop_token_ids
from specscope.errors import SpecscopeError
from specscope.formats.files import write_json_atomic

KINDS = ("eagle", "eagle3", "mtp")


def register(app: typer.Typer) -> None:
    app.command("train-head")(train_head)


def training_prompts(workloads: str, prompts_file: Optional[Path], holdout: int, synthetic: int = 0, seed: int = 0,
                     allow_empty: bool = False):
    """(train prompts, held-out prompt ids): bundled workloads (every `holdout`-th held out), a file's prompts
    and `synthetic` generated ones (specscope/workloads/synthetic.py); `allow_empty` when more come later."""
    from specscope.cli.options import load_workload_prompts
    from specscope.workloads import WORKLOADS, load_prompts

    names = [w.strip() for w in workloads.split(",") if w.strip()] if workloads != "all" else list(WORKLOADS)
    train, held = [], []
    for name in names:
        prompts = load_prompts(name)
        for i, p in enumerate(prompts):
            (held if holdout and i % holdout == holdout - 1 else train).append(p)
    if prompts_file is not None:
        if not prompts_file.is_file():
            raise SpecscopeError(f"--prompts {prompts_file}: no such file; give a JSONL/JSON/CSV file of prompts")
        train.extend(load_workload_prompts(str(prompts_file), None, None, None, None, 0))
    if synthetic:
        from specscope.workloads.synthetic import synthetic_prompts

        train.extend(synthetic_prompts(synthetic, seed=seed))
    if not train and not allow_empty:
        raise SpecscopeError("no training prompts: name workloads with --workloads, give --prompts FILE, "
                             "--synthetic N or --sampled-prompts N")
    return train, [p.id for p in held]


def train_head(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the trained head.")],
    kind: Annotated[str, typer.Option("--kind", help="eagle, eagle3 or mtp.")] = "eagle3",
    model: ModelOpt = None,
    workloads: Annotated[str, typer.Option("--workloads", help="Bundled workloads to train on (comma-separated or 'all'; '' for none).")] = "all",
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="Extra prompts: a JSONL/JSON/CSV file (field 'prompt' or 'message').")] = None,
    synthetic: Annotated[int, typer.Option("--synthetic", min=0, help="Also train on N generated prompts (stdlib code and docs, templates; see specscope/workloads/synthetic.py).")] = 0,
    sampled: Annotated[int, typer.Option("--sampled-prompts", min=0, help="Also train on N user requests the target writes itself (chat models; see specscope/workloads/sampled.py).")] = 0,
    holdout: Annotated[int, typer.Option("--holdout", min=0, help="Hold out every N-th bundled prompt per workload (0 = none).")] = 4,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Greedy tokens generated per prompt.")] = 256,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Sequences decoded at once for the data.")] = 8,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the data.")] = 8,
    max_steps: Annotated[int, typer.Option("--max-steps", min=0, help="Stop after N optimizer steps (0 = run all --epochs); the learning-rate schedule ends there.")] = 0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, warm-up then cosine).")] = 1e-3,
    draft_vocab: Annotated[int, typer.Option("--draft-vocab", min=0, help="Draft vocabulary: the N most frequent target tokens (0 = all).")] = 4096,
    ttt_steps: Annotated[int, typer.Option("--ttt-steps", min=1, help="EAGLE-3: training-time-test steps.")] = 3,
    num_mtp: Annotated[int, typer.Option("--num-mtp", min=1, help="MTP: heads (draft positions).")] = 3,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1, help="Optimizer steps between resumable checkpoints.")] = 20,
    init: Annotated[Optional[Path], typer.Option("--init", help="Continue from this head folder (same kind) instead of a fresh head.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Training-data file to reuse or write (default DIR/data.pt).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and shuffling seed.")] = 0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
) -> None:
    """Train a draft head on the target's own greedy outputs (self-distillation); resumable."""

    from specscope.engine.heads.checkpoint import save_head
    from specscope.engine.heads.training import TrainSettings, train_head as run_training

    if kind not in KINDS:
        from specscope.errors import unknown_name

        raise unknown_name("kind", kind, KINDS)
    if output.exists() and not output.is_dir():
        raise SpecscopeError(f"-o {output}: exists and is not a folder; pass a folder path")
    torch_device = setup_torch(device, threads)
    if init is not None and not init.is_dir():
        raise SpecscopeError(f"--init {init}: not a head folder")
    train_prompts, held_ids = training_prompts(workloads, prompts, holdout, synthetic, seed, allow_empty=sampled > 0)
    target, tokenizer, model_name = load_target(model, torch_device, quant)
    data_path = data or output / "data.pt"
    console = Console(stderr=True)
    if sampled:  # before the output folder is made: a target without a chat template leaves nothing behind
        train_prompts = train_prompts + _sampled_prompts(target, tokenizer, model_name, sampled, seed, data_path, console)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    init_head = None
    if init is not None:
        from specscope.engine.heads.checkpoint import load_head

        init_head = load_head(init, target.config, kind=kind)
    head_data, data_meta = _load_or_build_data(target, tokenizer, model_name, train_prompts, max_new_tokens,
                                               batch_size, data_path, console)
    settings = TrainSettings(kind=kind, epochs=epochs, max_steps=max_steps, lr=lr, draft_vocab=draft_vocab, ttt_steps=ttt_steps,
                             num_mtp=num_mtp, checkpoint_every=checkpoint_every, seed=seed)
    with Progress(TextColumn(f"train {kind}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("", total=None)

        def report(step, total, metrics):
            progress.update(task, total=total, completed=step,
                            description=" ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

        head, summary = run_training(target, head_data, settings, state_path=output / "train_state.pt", progress=report,
                                     init=init_head)
    command = "specscope " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    meta = {"settings": asdict(settings), "init": str(init) if init else None, "data": data_meta, "held_out_prompts": held_ids, "summary": summary,
            "command": command}
    save_head(head, output, meta={"training": {"settings": asdict(settings), "data_tokens": data_meta["tokens"]}})
    write_json_atomic(output / "TRAINING.json", {"target": model_name, "kind": kind, **meta,
                                                 "wall_seconds": round(time.perf_counter() - started, 1)})
    state = output / "train_state.pt"
    if state.exists():
        state.unlink()

    table = Table(title=f"specscope train-head: {kind} for {model_name}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {"training sequences": summary["sequences"], "training tokens": summary["tokens"],
            "optimizer steps": summary["steps"], "draft vocabulary": summary["draft_vocab"],
            "draft-vocab coverage": f"{summary['draft_vocab_coverage']:.3f}",
            **{f"last-epoch {k}": f"{v:.3f}" for k, v in summary["last_epoch"].items()}}
    for k, v in rows.items():
        table.add_row(k, str(v))
    Console().print(table)
    Console().print(f"wrote {output}; use it with `specscope run --method {kind} --head {output}`")
    print(json.dumps({"command": "train-head", "kind": kind, "model": model_name, "output": str(output),
                      **summary, "wall_seconds": round(time.perf_counter() - started, 1)}), flush=True)


def _sampled_prompts(target, tokenizer, model_name, count, seed, data_path: Path, console):
    """`count` user requests sampled from the target, kept beside the data (DATA.sampled.jsonl) for reruns."""
    from specscope.formats.files import atomic_open, read_jsonl_objects
    from specscope.workloads.prompt import Prompt
    from specscope.engine.heads.sampled_prompts import sample_user_prompts

    path = data_path.with_name(data_path.name + ".sampled.jsonl")
    key = {"model": model_name, "count": count, "seed": seed}
    if path.is_file():
        rows = [obj for _, obj in read_jsonl_objects(path)]
        if rows and rows[0] == {"key": key}:
            return [Prompt(**{**r, "messages": tuple(r["messages"])}) for r in rows[1:]]  # Prompt.to_json's fields
    with Progress(TextColumn("sampling user requests from the target"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("", total=count)
        prompts = sample_user_prompts(target, tokenizer, count, stop_token_ids(target, tokenizer), seed=seed,
                                      on_round=lambda n: progress.update(task, completed=n))
    if len(prompts) < count:
        console.print(f"[yellow]the target wrote {len(prompts)} distinct user requests, not {count}[/yellow]")
    with atomic_open(path, "w") as fh:
        fh.write(json.dumps({"key": key}) + "\n")
        for p in prompts:
            fh.write(json.dumps(p.to_json()) + "\n")
    return prompts


def _load_or_build_data(target, tokenizer, model_name, prompts, max_new_tokens, batch_size, path: Path, console):
    """Reuse `path` when it was made for the same model, prompts and length; else generate and save it."""
    import torch

    from specscope.engine.heads.data import HeadData, generate_continuations, target_features
    from specscope.engine.scheduler import Request
    from specscope.formats.files import atomic_open
    from specscope.workloads import render_fitting

    fit, skipped = render_fitting(prompts, tokenizer, target.config.max_position - max_new_tokens)
    meta = {"model": model_name, "prompts": sorted(p.id for p, _ in fit), "max_new_tokens": max_new_tokens,
            "num_layers": target.config.num_layers, "hidden_size": target.config.hidden_size}
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001
            raise SpecscopeError(f"--data {path}: cannot read it ({type(err).__name__}); delete it to regenerate") from None
        if isinstance(saved, dict) and saved.get("meta", {}).get("key") == meta:
            data = HeadData(**{k: saved[k] for k in ("tokens", "hidden", "aux", "labels", "prompt_lens")})
            return data, {**saved["meta"], "reused": True}
    requests = [Request(p.id, ids, max_new_tokens) for p, ids in fit]
    total_new = len(requests) * max_new_tokens
    # Greedy outputs are the slow part (minutes to an hour): they are generated in rounds and kept in
    # DATA.outputs.pt after each, so an interrupted run resumes where it stopped.
    partial = path.with_name(path.name + ".outputs.pt")
    done: dict[str, tuple] = {}
    if partial.is_file():
        try:
            saved = torch.load(partial, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001  an unreadable leftover: start over
            saved = None
        if isinstance(saved, dict) and saved.get("key") == meta:
            done = saved["done"]
    todo = [r for r in requests if r.id not in done]
    round_size, stops = 16 * batch_size, stop_token_ids(target, tokenizer)
    with Progress(TextColumn("data: greedy outputs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("", total=len(requests), completed=len(done))

        def finished(seq):
            progress.advance(task)
            if seq.error is None:
                done[seq.request.id] = (seq.context.copy(), seq.prompt_len)

        for start in range(0, len(todo), round_size):
            generate_continuations(target, todo[start : start + round_size], batch_size, max_new_tokens, stops,
                                   on_done=finished)
            with atomic_open(partial, "wb", encoding=None) as fh:
                torch.save({"key": meta, "done": done}, fh)
    seqs = [done[r.id] for r in requests if r.id in done]
    total = sum(len(s) for s, _ in seqs)
    with Progress(TextColumn("data: target features"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("", total=total)
        data = target_features(target, [s for s, _ in seqs], [n for _, n in seqs],
                               on_done=lambda n: progress.advance(task, n))
    info = {"key": meta, "tokens": data.num_tokens, "sequences": len(data.tokens), "skipped_prompts": skipped,
            "output_tokens": sum(len(t) - n for t, n in zip(data.tokens, data.prompt_lens)), "max_output": total_new}
    with atomic_open(path, "wb", encoding=None) as fh:  # (makes the folder)
        torch.save({**data.state(), "meta": info}, fh)
    partial.unlink(missing_ok=True)
    return data, info
