"""The engine side of a sweep: every measured cell, trace and profile on ONE loaded target.

Loading torch, the model and the tokenizer takes seconds; a sweep pays it once, not per cell.
Cells are measured with `specscope.commands.run.measure`, the function `specscope run` uses, so a
cell's files are exactly what `specscope run -o runs/<cell>` writes, except `peak_rss_mb`: here it
is the cell's own peak (see `memory.py`), marked `"peak_rss_scope": "cell"`.
Traces and the profile call the engine's tracing and profiling functions as `specscope trace` and
`specscope profile` do and write the same file formats.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Callable

from specscope.formats.files import atomic_open
from specscope.study.sweep import memory
from specscope.study.sweep.config import ADAPTIVE_K

Progress = Callable[[float], None]  # called with the fraction of the current step just completed


class EngineSession:
    """The target model and tokenizer of a sweep, loaded on first use; prompts cached per workload."""

    def __init__(self, engine: dict):
        self.engine = engine
        self._loaded = None
        self._prompts: dict[tuple, list] = {}

    def load(self):
        """(device, target, tokenizer, model name), loading them once."""
        if self._loaded is None:
            from specscope.cli.options import load_target, setup_torch

            device = setup_torch(self.engine["device"], self.engine["threads"])
            target, tokenizer, name = load_target(self.engine["model"], device, self.engine["quant"])
            warm_up(target)
            self._loaded = (device, target, tokenizer, name)
        return self._loaded

    def prompts(self, workload: str, num_prompts: int, seed: int) -> list:
        from specscope.cli.options import load_workload_prompts

        key = (workload, num_prompts, seed)
        if key not in self._prompts:
            self._prompts[key] = load_workload_prompts(workload, None, None, None, num_prompts, seed)
        return self._prompts[key]

    def options(self, s: dict, method: str, k: int):
        from specscope.cli.options import proposer_options

        device = self.load()[0]
        # The config's draft_model is the `draft` method's model; heads (eagle, eagle3, mtp) use the shipped ones.
        draft_model = s["draft_model"] if method == "draft" else None
        return proposer_options(method, k, s.get("temperature", 0.0), s.get("top_p", 1.0), s["ngram_min"],
                                s["ngram_max"], draft_model, device)

    # -----------------------------------------------------------------------------------------

    def run_cell(self, s: dict, folder: Path, advance: Progress) -> dict:
        """Measure one cell into `folder`; returns its summary."""
        from specscope.cli.run import RunSpec, measure

        _, target, tokenizer, name = self.load()
        prompts = self.prompts(s["workload"], s["num_prompts"], s["seed"])
        k, costs = s["k"], None
        if k == ADAPTIVE_K:  # as `specscope run --method <set> --k adaptive --cost-model <adaptive_cost_model>`
            from specscope.cli.run import ADAPTIVE_K_CAP
            from specscope.costs.presets import load_cost_model

            k, costs = ADAPTIVE_K_CAP, load_cost_model(s["adaptive_cost_model"])
        methods = s["method"].split(",")
        options = self.options(s, "draft" if "draft" in methods else methods[-1], k)
        spec = RunSpec(s["method"], k, s["batch_size"], s["max_new_tokens"], s["temperature"], s["top_p"],
                       s["seed"], s["chat"], s["workload"], cost_model=costs)
        scoped = memory.reset_peak()

        def extra() -> dict:
            peak = memory.peak_rss_mb() if scoped else None
            return {"peak_rss_mb": peak, "peak_rss_scope": "cell"} if peak is not None else {}

        return measure(target, tokenizer, name, prompts, spec, options, folder, keep_partial=False,
                       on_request=lambda seq, made, seconds: advance(1 / max(len(prompts), 1)), summary_extra=extra)

    def trace(self, s: dict, path: Path, advance: Progress) -> dict:
        """Record per-position acceptance traces of one workload into `path` (native format)."""
        from specscope.cli.options import build_requests, stop_token_ids
        from specscope.engine.proposers import build_proposer
        from specscope.engine.tracing import collect_traces
        from specscope.formats.trace import RequestTrace, Trace, request_record

        device, target, tokenizer, model_name = self.load()
        names = s["proposers"]
        built = {n: build_proposer(n, self.options(s, n, s["k_max"]), target=target, tokenizer=tokenizer) for n in names}
        prompts = self.prompts(s["workload"], s["num_prompts"], s["seed"])
        requests = build_requests(prompts, tokenizer, s["chat"], s["max_new_tokens"])
        header = Trace(
            requests=[], proposers=names, model=model_name, k_max=s["k_max"], hardware=hardware(device),
            workload=prompts[0].workload if prompts else s["workload"],
            extra={"proposer_labels": {n: p.label for n, p in built.items()}, "ngram_min": s["ngram_min"],
                   "ngram_max": s["ngram_max"], "max_new_tokens": s["max_new_tokens"], "partial": False},
        ).header()
        lines, positions, accepted = [], 0, {n: 0 for n in names}
        traced = collect_traces(target, built, requests, s["k_max"], s["batch_size"], s["max_new_tokens"],
                                stop_token_ids(target, tokenizer))
        for seq, acc, confidence in traced:
            advance(1 / max(len(requests), 1))
            if seq.error:
                continue
            prompt = seq.request.meta.get("prompt")
            req = RequestTrace(seq.request.id, seq.request.prompt_token_ids, seq.output.tolist(), acc,
                               workload=getattr(prompt, "workload", None), draft_confidence=confidence or None)
            lines.append(json.dumps(request_record(req, names), separators=(",", ":")))
            positions += len(acc[names[0]])
            for n in names:
                accepted[n] += int(acc[n].sum())
        with atomic_open(path) as fh:
            fh.write(json.dumps(header) + "\n")
            for line in lines:
                fh.write(line + "\n")
        return {"requests": len(lines), "positions": positions,
                "mean_acc_len": {n: accepted[n] / positions if positions else None for n in names}}

    def profile(self, s: dict, path: Path, advance: Progress) -> dict:
        """Time target and draft forwards into the profile CSV `path` (what `fit-cost` reads)."""
        from specscope.engine.profiling import profile_proposer, profile_step_phases, profile_target, write_profile_csv
        from specscope.engine.proposers import build_proposer

        device, target, tokenizer, _ = self.load()
        bs, ks, ctx, reps = s["batch_sizes"], s["ks"], s["contexts"], s["reps"]
        built = {n: build_proposer(n, self.options(s, n, max(ks)), target=target, tokenizer=tokenizer)
                 for n in s["proposers"]}
        total = len(bs) * len(ctx) * (len(ks) + len(built) * len([k for k in ks if k > 0])) + len(bs)
        rows = []
        for row in profile_target(target, bs, ks, ctx, reps):
            rows.append(row)
            advance(1 / total)
        for name, proposer in built.items():
            for row in profile_proposer(proposer, name, target.config.vocab_size, device, bs, ks, ctx, reps):
                rows.append(row)
                advance(1 / total)
        rows.extend(profile_step_phases(target, bs))
        advance(len(bs) / total)
        with atomic_open(path) as fh:
            write_profile_csv(fh, rows)
        return {"rows": len(rows)}


def warm_up(target) -> None:
    """One short untimed generation, so one-time costs (building or loading the CPU kernels, first
    allocations) do not land in the first cell's timing."""
    from specscope.engine.engine import Engine, EngineConfig
    from specscope.engine.proposers.base import ProposerOptions
    from specscope.engine.proposers.none import NoProposer
    from specscope.engine.scheduler import Request

    engine = Engine(target, NoProposer(ProposerOptions(k=0)), EngineConfig(k=0, batch_size=2, max_new_tokens=4))
    for _ in engine.generate([Request("warm-up-0", [1, 2, 3, 4, 5, 6]), Request("warm-up-1", [7, 8, 9])]):
        pass


def hardware(device) -> str:
    """The hardware a trace was recorded on, for its header."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} cpu x{torch.get_num_threads()} threads ({platform.processor() or platform.system()})"
