"""A measured cell's `requests.jsonl`: one JSON object per request, written as requests finish.

Fields (any backend writes them where it has them; `id` always):
    id, workload, prompt_token_ids, output_token_ids, output_text,
    finish_reason        "stop" | "length" | "error"
    error                why the request failed (then no output is measured)
    num_output_tokens,
    latency_s            seconds from the request's admission (it took a batch slot) to its last token
    ttft_s               seconds from its admission to its first output token (time to first token: the
                         prefill step's); per-token latency = (latency_s - ttft_s) / (num_output_tokens - 1)
    mean_acc_len         tokens committed per decode step (accepted + bonus)
    steps                {"proposed": [...], "accepted": [...]}: per decode step (the prefill token is not a step)
    bleu4_prompt_overlap 0..1
A server cell (`specscope bench`, `study/bench.py`) adds: http_status, num_output_tokens_from (usage |
token_ids | chunks), num_prompt_tokens, ttft_s, itl_s (list), tpot_s, sd (the acceptance the engine
reported: source, steps, drafted, accepted, k, histogram, mean_acc_len, acceptance_rate), sd_error; its
`steps` are the server's per-step arrays where it reports them, and output_token_ids only where it
returns them.

Readers also take `steps` as a list of {"proposed", "accepted"} objects or of [proposed, accepted] pairs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

from specscope.errors import SpecscopeError, brief
from specscope.formats.files import read_jsonl_objects

FIX = "delete the cell and re-run it"


def record_line(record: dict) -> str:
    """One record as a line of the file (compact JSON, newline included)."""
    return json.dumps(record, separators=(",", ":")) + "\n"


def read_requests(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) per request of a `requests.jsonl`, each validated (`check_record`)."""
    for lineno, record in read_jsonl_objects(path, "requests file"):
        check_record(record, f"{path}:{lineno}")
        yield lineno, record


def check_record(record: dict, where: str) -> None:
    """The fields readers compute with have their types: `id` a string or integer, `workload` / `error` text,
    token lists of integers, `bleu4_prompt_overlap` in [0, 1], `steps` one of its shapes (`step_counts`)."""
    if "id" in record and (isinstance(record["id"], bool) or not isinstance(record["id"], (str, int))):
        raise SpecscopeError(f"{where}: field 'id' = {brief(record['id'])} must be a string or an integer; {FIX}")
    for key in ("workload", "error", "finish_reason", "output_text"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise SpecscopeError(f"{where}: field '{key}' = {brief(record[key])} must be text; {FIX}")
    for key in ("prompt_token_ids", "output_token_ids"):
        value = record.get(key)
        if value is not None and not (isinstance(value, list) and all(type(t) is int and t >= 0 for t in value)):
            raise SpecscopeError(f"{where}: field '{key}' must be a list of token ids; {FIX}")
    overlap = record.get("bleu4_prompt_overlap")
    if overlap is not None and not (isinstance(overlap, (int, float)) and not isinstance(overlap, bool)
                                    and math.isfinite(overlap) and 0 <= overlap <= 1):
        raise SpecscopeError(f"{where}: field 'bleu4_prompt_overlap' = {brief(overlap)} must be in [0, 1]; {FIX}")
    if not record.get("error"):
        step_counts(record.get("steps"), where)


def step_counts(steps, where: str) -> tuple[list[int], list[int]]:
    """(proposed, accepted) per decode step from a record's `steps` field (any of the accepted shapes):
    integers, 0 <= accepted <= proposed, as many of each; else a one-line error at `where` (`file:line`)."""
    if steps is None:
        return [], []
    try:
        if isinstance(steps, dict):
            proposed, accepted = list(steps["proposed"]), list(steps["accepted"])
        elif steps and isinstance(steps[0], dict):
            proposed, accepted = [s["proposed"] for s in steps], [s["accepted"] for s in steps]
        else:
            proposed, accepted = [s[0] for s in steps], [s[1] for s in steps]
    except (KeyError, TypeError, IndexError):
        proposed = accepted = None
    if (proposed is None or len(proposed) != len(accepted)
            or not all(type(p) is int and type(a) is int and 0 <= a <= p for p, a in zip(proposed, accepted))):
        raise SpecscopeError(f"{where}: 'steps' must list proposed/accepted counts per step "
                             f"(integers, 0 <= accepted <= proposed); re-run the cell")
    return proposed, accepted


def totals(records: list[dict], wall_seconds: float) -> dict:
    """The summary's request totals (formats/summary.py), from the records of one run."""
    done = [r for r in records if not r.get("error")]
    generated = sum(len(r["output_token_ids"]) if r.get("output_token_ids") is not None
                    else r.get("num_output_tokens") or 0 for r in done)  # a server may return no token ids
    proposed = accepted = decode_steps = 0
    for r in done:
        steps = r.get("steps") or {}
        proposed += sum(steps.get("proposed", ()))
        accepted += sum(steps.get("accepted", ()))
        decode_steps += len(steps.get("accepted", ()))
    return {
        "num_requests": len(records),
        "num_completed": len(done),
        "num_errors": len(records) - len(done),
        "generated_tokens": generated,
        "wall_seconds": wall_seconds,
        "throughput_tok_s": generated / wall_seconds if wall_seconds > 0 else 0.0,
        "decode_steps": decode_steps,
        "mean_acc_len": (decode_steps + accepted) / decode_steps if decode_steps else None,
        "proposed_tokens": proposed,
        "accepted_tokens": accepted,
        "acceptance_rate": accepted / proposed if proposed else None,
    }
