"""Record per-position acceptance traces of a run's prompts into a native trace file (`formats/trace.py`).

    summary = record_traces(backend, settings, ["ngram", "draft"], k_max=20, path=Path("code.trace.jsonl"))

At every output position each proposer drafts up to k_max tokens and greedy verification records
acc_len; one token is committed per position, so the outputs are plain greedy decoding (how:
`specscope/engine/tracing.py`). Requests run in groups of `settings.batch_size`. The file is
written at the end, atomically; Ctrl-C keeps the finished requests and marks the header
`"partial": true`. Used by `specscope trace` and a sweep's [trace] steps.

`trees` (tree shapes, `specscope/tree_spec.py`): every traced proposer that can draft a tree is also
traced under each shape, as the extra proposer `<proposer>@tree:<shape>` (`formats/trace.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open
from specscope.formats.trace import RequestTrace, Trace, request_record
from specscope.settings import RunSettings
from specscope.study.engine_backend import EngineBackend, build_requests, hardware, stop_token_ids
from specscope.study.prompts import run_prompts

OnTraced = Callable[[object], None]  # called with each finished engine sequence (errors included)


def tree_keys(proposers: list[str], trees) -> list[tuple[str, str, str]]:
    """(trace key, proposer, tree spec) for every proposer that can draft a tree, under every shape in `trees`."""
    from specscope.engine.proposers import PROPOSERS
    from specscope.tree_spec import tree_key

    return [(tree_key(name, spec), name, spec) for name in proposers if PROPOSERS[name].supports_tree for spec in trees]


def record_traces(backend: EngineBackend, settings: RunSettings, proposers: list[str], k_max: int, path: Path,
                  on_traced: OnTraced | None = None, keep_partial: bool = False, prompts=None, trees=()) -> dict:
    """Trace `proposers` (greedy, lookahead `k_max`) over the run's prompts into `path`, and under each tree shape
    of `trees` those that can draft one; returns a short summary: requests, errors, positions, mean_acc_len per
    proposer (trace key), proposer labels, partial."""
    from specscope.engine.tracing import collect_traces

    device, target, tokenizer, model_name = backend.load()
    greedy = settings.replace(temperature=0.0, top_p=1.0, k=k_max)
    built = {n: backend.proposer(n, greedy) for n in proposers}
    for key, name, spec in tree_keys(proposers, trees):
        built[key] = backend.proposer(name, greedy.replace(tree=spec))
    proposers = list(built)
    prompts = run_prompts(settings) if prompts is None else prompts
    requests = build_requests(prompts, tokenizer, settings.chat, settings.max_new_tokens)
    longest = max((r.max_new_tokens for r in requests), default=1)
    header = Trace(
        requests=[], proposers=list(proposers), model=model_name, k_max=k_max, hardware=hardware(device),
        workload=prompts[0].workload if prompts else settings.workload,
        extra={"proposer_labels": {n: p.label + (f" tree {p.tree.label}" if getattr(p, "tree", None) else "")
                                   for n, p in built.items()},
               "ngram_min": settings.proposer.ngram_min,
               "ngram_max": settings.proposer.ngram_max, "max_new_tokens": settings.max_new_tokens, "partial": False},
    ).header()
    lines, positions, errors, partial = [], 0, 0, False
    accepted = {n: 0 for n in proposers}
    traced = collect_traces(target, built, requests, k_max, settings.batch_size, longest, stop_token_ids(target, tokenizer))
    try:
        for seq, acc, confidence in traced:
            if on_traced is not None:
                on_traced(seq)
            if seq.error:
                errors += 1
                continue
            prompt = seq.request.meta.get("prompt")
            req = RequestTrace(seq.request.id, seq.request.prompt_token_ids, seq.output.tolist(), acc,
                               workload=getattr(prompt, "workload", None), draft_confidence=confidence or None)
            lines.append(json.dumps(request_record(req, list(proposers)), separators=(",", ":")))
            positions += len(acc[proposers[0]])
            for n in proposers:
                accepted[n] += int(acc[n].sum())
    except KeyboardInterrupt:
        if not keep_partial:
            raise
        partial = True
    if not lines:  # a trace holds at least one request (`formats/trace.py`): write nothing rather than that
        if partial:
            raise KeyboardInterrupt
        raise SpecscopeError(f"no request could be traced (all {errors} failed); nothing was written to {path}")
    header["partial"] = partial
    with atomic_open(path) as fh:
        fh.write(json.dumps(header) + "\n")
        for line in lines:
            fh.write(line + "\n")
    return {"requests": len(lines), "errors": errors, "positions": positions, "partial": partial,
            "proposer_labels": header["proposer_labels"],
            "mean_acc_len": {n: accepted[n] / positions if positions else None for n in proposers}}
