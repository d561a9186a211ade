"""The job behind `specscope train-head`: training prompts, the target's own greedy outputs and features, the run.

    train, held = training_prompts("all", None, holdout=4)
    data, meta = load_or_build_data(target, tokenizer, name, train, 256, 8, Path("heads/eagle3/data.pt"), progress)

Training itself is `specscope/engine/heads/training.py`; sampling user requests from the target
`specscope/engine/heads/sampled_prompts.py`. Long parts report progress through `progress(label, total)`,
a context manager yielding a task with `advance(n=1)` and `update(completed=...)`; they keep what
they made after every round, so an interrupted run resumes.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable, Optional, Protocol

from specscope.errors import SpecscopeError
from specscope.study.engine_backend import stop_token_ids


class ProgressTask(Protocol):
    def advance(self, n: float = 1) -> None: ...

    def update(self, completed: float | None = None, total: float | None = None, description: str | None = None) -> None: ...


ProgressFactory = Callable[[str, Optional[int]], AbstractContextManager]  # (label, total) -> a ProgressTask


def training_prompts(workloads: str, prompts_file: Optional[Path], holdout: int, synthetic: int = 0, seed: int = 0,
                     allow_empty: bool = False):
    """(train prompts, held-out prompt ids): bundled workloads (every `holdout`-th held out), a file's prompts
    and `synthetic` generated ones (specscope/workloads/synthetic.py); `allow_empty` when more come later."""
    from specscope.settings import RunSettings
    from specscope.study.prompts import run_prompts
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
        train.extend(run_prompts(RunSettings(workload=str(prompts_file))))
    if synthetic:
        from specscope.workloads.synthetic import synthetic_prompts

        train.extend(synthetic_prompts(synthetic, seed=seed))
    if not train and not allow_empty:
        raise SpecscopeError("no training prompts: name workloads with --workloads, give --prompts FILE, "
                             "--synthetic N or --sampled-prompts N")
    return train, [p.id for p in held]


def sampled_prompts(target, tokenizer, model_name, count, seed, data_path: Path, progress: ProgressFactory, warn):
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
    with progress("sampling user requests from the target", count) as task:
        prompts = sample_user_prompts(target, tokenizer, count, stop_token_ids(target, tokenizer), seed=seed,
                                      on_round=lambda n: task.update(completed=n))
    if len(prompts) < count:
        warn(f"the target wrote {len(prompts)} distinct user requests, not {count}")
    with atomic_open(path, "w") as fh:
        fh.write(json.dumps({"key": key}) + "\n")
        for p in prompts:
            fh.write(json.dumps(p.to_json()) + "\n")
    return prompts


def load_or_build_data(target, tokenizer, model_name, prompts, max_new_tokens, batch_size, path: Path,
                       progress: ProgressFactory):
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
    with progress("data: greedy outputs", len(requests)) as task:
        task.update(completed=len(done))

        def finished(seq):
            task.advance()
            if seq.error is None:
                done[seq.request.id] = (seq.context.copy(), seq.prompt_len)

        for start in range(0, len(todo), round_size):
            generate_continuations(target, todo[start : start + round_size], batch_size, max_new_tokens, stops,
                                   on_done=finished)
            with atomic_open(partial, "wb", encoding=None) as fh:
                torch.save({"key": meta, "done": done}, fh)
    seqs = [done[r.id] for r in requests if r.id in done]
    total = sum(len(s) for s, _ in seqs)
    with progress("data: target features", total) as task:
        data = target_features(target, [s for s, _ in seqs], [n for _, n in seqs], on_done=task.advance)
    info = {"key": meta, "tokens": data.num_tokens, "sequences": len(data.tokens), "skipped_prompts": skipped,
            "output_tokens": sum(len(t) - n for t, n in zip(data.tokens, data.prompt_lens)), "max_output": total_new}
    with atomic_open(path, "wb", encoding=None) as fh:  # (makes the folder)
        torch.save({**data.state(), "meta": info}, fh)
    partial.unlink(missing_ok=True)
    return data, info


def train_and_save(target, tokenizer, model_name: str, settings, train_prompts, held_ids: list[str], output: Path,
                   data_path: Path, init: Path | None, sampled: int, max_new_tokens: int, batch_size: int,
                   progress: ProgressFactory, warn: Callable[[str], None]) -> dict:
    """Gather the data (sampling `sampled` extra prompts first), train a head of `settings.kind` (resumable), write
    it to `output` with TRAINING.json; returns the training summary."""
    import shlex
    import sys
    import time
    from dataclasses import asdict

    from specscope.engine.heads.checkpoint import load_head, save_head
    from specscope.engine.heads.training import train_head
    from specscope.formats.files import write_json_atomic

    started = time.perf_counter()
    if sampled:  # before the output folder is made: a target without a chat template leaves nothing behind
        train_prompts = train_prompts + sampled_prompts(target, tokenizer, model_name, sampled, settings.seed, data_path,
                                                        progress, warn)
    output.mkdir(parents=True, exist_ok=True)
    init_head = load_head(init, target.config, kind=settings.kind) if init is not None else None
    head_data, data_meta = load_or_build_data(target, tokenizer, model_name, train_prompts, max_new_tokens,
                                              batch_size, data_path, progress)
    with progress(f"train {settings.kind}", None) as task:

        def report(step, total, metrics):
            task.update(total=total, completed=step, description=" ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

        head, summary = train_head(target, head_data, settings, state_path=output / "train_state.pt", progress=report,
                                   init=init_head)
    command = "specscope " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    meta = {"settings": asdict(settings), "init": str(init) if init else None, "data": data_meta,
            "held_out_prompts": held_ids, "summary": summary, "command": command}
    save_head(head, output, meta={"training": {"settings": asdict(settings), "data_tokens": data_meta["tokens"]}})
    write_json_atomic(output / "TRAINING.json", {"target": model_name, "kind": settings.kind, **meta,
                                                 "wall_seconds": round(time.perf_counter() - started, 1)})
    (output / "train_state.pt").unlink(missing_ok=True)
    return summary
