"""A measured cell's `requests.jsonl`: one JSON object per request, written as requests finish.

Fields (any backend writes them where it has them; `id` always):
    id, workload, prompt_token_ids, output_token_ids, output_text,
    finish_reason        "stop" | "length" | "error"
    error                why the request failed (then no output is measured)
    num_output_tokens, latency_s,
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
from pathlib import Path
from typing import Iterator

from specscope.errors import SpecscopeError
from specscope.formats.files import read_jsonl_objects


def record_line(record: dict) -> str:
    """One record as a line of the file (compact JSON, newline included)."""
    return json.dumps(record, separators=(",", ":")) + "\n"


def read_requests(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) per request of a `requests.jsonl`."""
    return read_jsonl_objects(path)


def step_counts(steps, path: Path, lineno: int) -> tuple[list[int], list[int]]:
    """(proposed, accepted) per decode step from a record's `steps` field (any of the accepted shapes)."""
    if steps is None:
        return [], []
    try:
        if isinstance(steps, dict):
            return [int(x) for x in steps["proposed"]], [int(x) for x in steps["accepted"]]
        if steps and isinstance(steps[0], dict):
            return [int(s["proposed"]) for s in steps], [int(s["accepted"]) for s in steps]
        return [int(s[0]) for s in steps], [int(s[1]) for s in steps]
    except (KeyError, TypeError, ValueError, IndexError):
        raise SpecscopeError(
            f"{path}:{lineno}: 'steps' must list proposed/accepted counts per step; re-run the cell"
        ) from None


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
