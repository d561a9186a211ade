"""The built-in engine as a measurement backend: the target loaded once, cells, traces and profiles run on it.

    backend = EngineBackend(settings)                 # the engine part: model, device, threads, quant
    for record in backend.run(settings, prompts): ... # a cell (formats/requests.py records)
    backend.summary(wall_seconds)                     # what the engine measured (steps, phases, memory)

`specscope run`, `trace` and `profile` make one for their run; a sweep keeps one for all its cells
(loading torch, the model and the tokenizer takes seconds). The engine itself (`specscope/engine/`)
knows nothing of studies: this module turns its sequences and step records into the study's files.
"""

from __future__ import annotations

import platform
from typing import Iterator

from specscope.errors import SpecscopeError
from specscope.settings import RunSettings
from specscope.workloads.prompt import Prompt


def setup_torch(settings: RunSettings):
    """Apply the run's device and threads; returns the torch.device (one-line error without CUDA)."""
    import torch

    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecscopeError("--device cuda: no CUDA device is available to torch here; use --device cpu")
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    return torch.device(settings.device)


def check_proposers(settings: RunSettings) -> None:
    """Every method is a registered proposer, and a tree is asked only of one that can draft it."""
    from specscope.engine.proposers import PROPOSERS
    from specscope.engine.tree import parse_tree
    from specscope.errors import unknown_name

    for name in settings.proposer.methods:
        if name not in PROPOSERS:
            raise unknown_name("method", name, PROPOSERS)
    spec = settings.proposer.tree
    if spec is not None:
        parse_tree(spec)
        for name in settings.proposer.methods:
            if not PROPOSERS[name].supports_tree:
                branching = ", ".join(n for n, p in PROPOSERS.items() if p.supports_tree)
                raise SpecscopeError(
                    f"--tree {spec}: method '{name}' proposes a single continuation and cannot draft a tree; "
                    f"use --method {branching} (or drop --tree)"
                )
        if settings.adaptive is not None:
            raise SpecscopeError(f"--tree {spec}: a tree is drafted whole every step; drop --k adaptive "
                                 "(or --tree) to compare them")


def stop_token_ids(target, tokenizer) -> list[int]:
    """End-of-sequence ids: the model's and the tokenizer's."""
    ids = set(target.config.eos_token_ids)
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def build_requests(prompts: list[Prompt], tokenizer, chat: bool | None, max_new_tokens: int | None):
    """Engine requests from workload prompts (per-prompt output limits unless `max_new_tokens`)."""
    from specscope.engine.scheduler import Request
    from specscope.workloads import render_prompt
    from specscope.workloads.render import use_chat

    chat = use_chat(tokenizer, chat)
    return [
        Request(p.id, render_prompt(p, tokenizer, chat), max_new_tokens or p.max_new_tokens, meta={"prompt": p})
        for p in prompts
    ]


def hardware(device) -> str:
    """The hardware a trace or profile was recorded on."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} cpu x{torch.get_num_threads()} threads ({platform.processor() or platform.system()})"


def request_record(seq, tokenizer=None, overlap=None) -> dict:
    """The `requests.jsonl` record of a finished engine sequence; `overlap(prompt, text)` adds bleu4_prompt_overlap."""
    req = seq.request
    record = {"id": req.id}
    workload = getattr(req.meta.get("prompt"), "workload", None)
    if workload:
        record["workload"] = workload
    record["prompt_token_ids"] = [int(t) for t in req.prompt_token_ids]
    output = [int(t) for t in seq.output]
    record["output_token_ids"] = output
    if tokenizer is not None:
        record["output_text"] = tokenizer.decode(output, skip_special_tokens=True)
    record["finish_reason"] = seq.finish_reason
    if seq.error:
        record["error"] = seq.error
    record["num_output_tokens"] = len(output)
    record["latency_s"] = round(seq.end_time - seq.start_time, 6)
    if seq.first_token_time is not None:
        record["ttft_s"] = round(seq.first_token_time - seq.start_time, 6)
    committed = sum(seq.accepted) + len(seq.accepted)
    record["mean_acc_len"] = committed / len(seq.accepted) if seq.accepted else None
    record["steps"] = {"proposed": list(seq.proposed), "accepted": list(seq.accepted)}
    if overlap is not None and "output_text" in record and not seq.error:
        record["bleu4_prompt_overlap"] = overlap(req.meta.get("prompt"), record["output_text"])
    return record


def step_summary(steps) -> dict:
    """The summary's fields from the engine's step records (time per phase, decode-phase throughput)."""
    from specscope.engine.timing import time_breakdown

    breakdown = time_breakdown(steps)
    step_seconds = sum(breakdown.values())
    decode = [s for s in steps if s.num_prefill == 0]
    decode_seconds = sum(s.seconds for s in decode)
    return {
        "decode_throughput_tok_s": sum(s.committed for s in decode) / decode_seconds if decode_seconds > 0 else None,
        "num_steps": len(steps),
        "time_breakdown_s": breakdown,
        "overhead_fraction": breakdown["overhead"] / step_seconds if step_seconds else None,
        "mean_step_s": step_seconds / len(steps) if steps else None,
    }


def warm_up(target) -> None:
    """One short untimed generation, so one-time costs (building or loading the CPU kernels, first
    allocations) do not land in the first measured cell's timing."""
    from specscope.engine.engine import Engine
    from specscope.engine.scheduler import Request

    engine = Engine.plain(target, RunSettings(batch_size=2, max_new_tokens=4))
    for _ in engine.generate([Request("warm-up-0", [1, 2, 3, 4, 5, 6]), Request("warm-up-1", [7, 8, 9])]):
        pass


class EngineBackend:
    """The built-in engine: the target and tokenizer of `settings` (model, device, threads, quant), loaded on first
    use, and the runs made on it."""

    def __init__(self, settings: RunSettings, warm: bool = False):
        self.settings = settings
        self.warm = warm  # run `warm_up` after loading (a sweep: its first cell's timing stays clean)
        self._loaded = None
        self._last = None  # (engine, settings, finished sequences) of the last `run`
        self._prepared = None  # (settings, prompts, engine, requests) built by `prepare` for the next `run`

    def load(self):
        """(device, target, tokenizer, model name), loading them once."""
        if self._loaded is None:
            from specscope.engine.loading import DEFAULT_MODEL, load_model

            device = setup_torch(self.settings)
            target, tokenizer = load_model(self.settings.model, device=device, quant=self.settings.quant)
            if self.warm:
                warm_up(target)
            self._loaded = (device, target, tokenizer, self.settings.model or DEFAULT_MODEL)
        return self._loaded

    def proposer(self, name: str, settings: RunSettings):
        """Proposer `name` built from `settings` on the loaded target."""
        from specscope.engine.proposers import build_proposer

        _, target, tokenizer, _ = self.load()
        return build_proposer(name, settings, target=target, tokenizer=tokenizer)

    def drafter(self, settings: RunSettings):
        """What drafts in a cell: its method's proposer (a fixed k), or under `--k adaptive` its methods' proposers
        under the adaptive policy (`specscope/policy/adaptive.py`), deciding under the settings' cost model."""
        if settings.adaptive is None:
            return self.proposer(settings.proposer.method, settings)
        from specscope.costs.presets import load_cost_model
        from specscope.engine.drafting import Drafter
        from specscope.policy.adaptive import Adaptive
        from specscope.policy.confidence import ConfidenceParams

        names = tuple(settings.proposer.methods)
        subs = {name: self.proposer(name, settings) for name in names}
        policy = Adaptive(names, load_cost_model(settings.adaptive.cost_model),
                          name="adaptive" if len(names) == 1 else "adaptive-combine",
                          confidence=ConfidenceParams())  # the engine's chains calibrate each depth apart
        return Drafter(subs, policy, label="adaptive(" + "+".join(p.label for p in subs.values()) + ")")

    def prepare(self, settings: RunSettings, prompts: list[Prompt]) -> None:
        """Build the run's requests, drafter (a head or draft model loads here) and engine before the clock starts:
        a cell's throughput is its generation's, not its set-up's (`run` builds them itself when not prepared)."""
        from specscope.engine.engine import Engine

        _, target, tokenizer, _ = self.load()
        requests = build_requests(prompts, tokenizer, settings.chat, settings.max_new_tokens)
        longest = max((r.max_new_tokens for r in requests), default=1)
        engine = Engine(target, self.drafter(settings), settings.replace(max_new_tokens=longest),
                        stop_token_ids(target, tokenizer))
        self._prepared = (settings, prompts, engine, requests)

    def run(self, settings: RunSettings, prompts: list[Prompt]) -> Iterator[dict]:
        from specscope.workloads import bleu4_overlap

        _, target, tokenizer, _ = self.load()
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared[0] is not settings or prepared[1] is not prompts:
            self.prepare(settings, prompts)
            prepared, self._prepared = self._prepared, None
        _, _, engine, requests = prepared
        finished: list = []
        self._last = (engine, settings, finished)

        def overlap(prompt, text):
            return round(bleu4_overlap(prompt.text, text), 6) if prompt is not None else None

        for seq in engine.generate(requests):
            finished.append(seq)
            yield request_record(seq, tokenizer, overlap)

    def summary(self, wall_seconds: float) -> dict:
        import torch

        from specscope.study.memory import process_peak_rss_mb

        engine, settings, _ = self._last
        _, target, _, _ = self.load()
        return {
            **step_summary(engine.steps),
            "peak_rss_mb": process_peak_rss_mb(),
            "adaptive_choices": engine.drafter.choices(),
            "threads": torch.get_num_threads(),
            "dtype": str(target.dtype).replace("torch.", ""),
            "weight_format": getattr(target, "weight_format", "dense"),
            "kv_cache_mb": engine.kv_cache_nbytes() / 2**20,
            "proposer_mb": engine.drafter.nbytes() / 2**20,
            "model_mb": target.weight_nbytes() / 2**20,
        }

    def describe(self, settings: RunSettings) -> dict:
        engine, _, _ = self._last
        _, target, _, name = self.load()
        policy = engine.drafter.policy
        return {"model": name, "label": engine.drafter.label, "k": engine.draft_budget,  # a tree: its nodes
                "cost_model": policy.costs.name if settings.adaptive is not None else None,
                "tree": engine.tree.label if engine.tree is not None else None, "device": str(target.device)}
