"""`specscope train-head`: train an EAGLE, EAGLE-3 or MTP draft head for a target by self-distillation.

    specscope train-head --kind eagle3 -o heads/eagle3                 # default model, bundled workloads
    specscope train-head --kind eagle --model my.gguf --prompts mine.jsonl -o heads/eagle
    specscope train-head --kind eagle --synthetic 2000 -o heads/eagle      # + 2000 generated prompts
    specscope train-head --kind eagle --sampled-prompts 1500 -o heads/eagle  # + 1500 the target writes itself
    specscope run --method eagle3 --head heads/eagle3 -o out/eagle3

0. With --sampled-prompts N the target first writes N user requests itself (DATA.sampled.jsonl,
   reused by a rerun with the same model, N and --seed; `specscope/engine/heads/sampled_prompts.py`).
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
benchmarks can measure acceptance on prompts the head never saw. Prints a table (`--json`: and the result
as one JSON line). The job: `specscope/study/head_training.py`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from specscope.cli.options import (DeviceOpt, JsonOpt, ModelOpt, QuantOpt, ThreadsOpt, check_output_dir, print_json,
                                   run_settings)
from specscope.cli.progress import rich_tasks
from specscope.errors import SpecscopeError, unknown_name

KINDS = ("eagle", "eagle3", "mtp")


def register(app: typer.Typer) -> None:
    app.command("train-head")(train_head)




def train_head(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the trained head.")],
    kind: Annotated[str, typer.Option("--kind", help="eagle, eagle3 or mtp.")] = "eagle3",
    model: ModelOpt = None,
    workloads: Annotated[str, typer.Option("--workloads", help="Bundled workloads to train on (comma-separated or 'all'; '' for none).")] = "all",
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="Extra prompts: a JSONL/JSON/CSV file (field 'prompt' or 'message').")] = None,
    synthetic: Annotated[int, typer.Option("--synthetic", help="Also train on N generated prompts (stdlib code and docs, templates; see specscope/workloads/synthetic.py).")] = 0,
    sampled: Annotated[int, typer.Option("--sampled-prompts", help="Also train on N user requests the target writes itself (chat models; see specscope/engine/heads/sampled_prompts.py).")] = 0,
    holdout: Annotated[int, typer.Option("--holdout", help="Hold out every N-th bundled prompt per workload (0 = none).")] = 4,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Greedy tokens generated per prompt.")] = 256,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Sequences decoded at once for the data.")] = 8,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the data.")] = 8,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after N optimizer steps (0 = run all --epochs); the learning-rate schedule ends there.")] = 0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, warm-up then cosine).")] = 1e-3,
    draft_vocab: Annotated[int, typer.Option("--draft-vocab", help="Draft vocabulary: the N most frequent target tokens (0 = all).")] = 4096,
    ttt_steps: Annotated[int, typer.Option("--ttt-steps", help="EAGLE-3: training-time-test steps.")] = 3,
    num_mtp: Annotated[int, typer.Option("--num-mtp", help="MTP: heads (draft positions).")] = 3,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Optimizer steps between resumable checkpoints.")] = 20,
    init: Annotated[Optional[Path], typer.Option("--init", help="Continue from this head folder (same kind) instead of a fresh head.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Training-data file to reuse or write (default DIR/data.pt).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and shuffling seed.")] = 0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Train a draft head on the target's own greedy outputs (self-distillation); resumable."""

    from specscope.engine.heads.training import TrainSettings
    from specscope.study.engine_backend import EngineBackend
    from specscope.study.head_training import train_and_save, training_prompts

    if kind not in KINDS:
        raise unknown_name("kind", kind, KINDS)
    check_output_dir(output)
    for flag, value, low in (("--synthetic", synthetic, 0), ("--sampled-prompts", sampled, 0), ("--holdout", holdout, 0),
                             ("--max-new-tokens", max_new_tokens, 1), ("--batch-size", batch_size, 1),
                             ("--epochs", epochs, 1), ("--max-steps", max_steps, 0), ("--draft-vocab", draft_vocab, 0),
                             ("--ttt-steps", ttt_steps, 1), ("--num-mtp", num_mtp, 1),
                             ("--checkpoint-every", checkpoint_every, 1)):
        if value < low:
            raise SpecscopeError(f"{flag} {value}: must be an integer >= {low}")
    if init is not None and not init.is_dir():
        raise SpecscopeError(f"--init {init}: not a head folder")
    backend = EngineBackend(run_settings(model=model, device=device, threads=threads, quant=quant))
    train_prompts, held_ids = training_prompts(workloads, prompts, holdout, synthetic, seed, allow_empty=sampled > 0)
    _, target, tokenizer, model_name = backend.load()
    console = Console(stderr=True)
    settings = TrainSettings(kind=kind, epochs=epochs, max_steps=max_steps, lr=lr, draft_vocab=draft_vocab, ttt_steps=ttt_steps,
                             num_mtp=num_mtp, checkpoint_every=checkpoint_every, seed=seed)
    started = time.perf_counter()
    summary = train_and_save(target, tokenizer, model_name, settings, train_prompts, held_ids, output,
                             data or output / "data.pt", init, sampled, max_new_tokens, batch_size,
                             progress=rich_tasks(console),
                             warn=lambda text: console.print(f"[yellow]{text}[/yellow]"))

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
    print_json(json_out, {"command": "train-head", "kind": kind, "model": model_name, "output": str(output),
                          **summary, "wall_seconds": round(time.perf_counter() - started, 1)})




