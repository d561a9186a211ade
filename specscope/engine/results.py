"""Result records of `specscope run`: one JSON object per request, and the run's summary.

Request record (one line of `requests.jsonl`):
    id, workload, prompt_token_ids, output_token_ids, output_text, finish_reason ("stop" | "length" |
    "error"), error (when it failed), num_output_tokens, latency_s, mean_acc_len,
    steps: {"proposed": [...], "accepted": [...]} — per decode step (the prefill token is not a step),
    bleu4_prompt_overlap (0..1, when the workloads package can compute it).

Summary (`summary.json`): totals over the completed requests and the steps the engine ran — see
`summarize`. `decode_throughput_tok_s` counts only the steps that ran no prompt: speculation changes
those alone, and at small output lengths the prompts' forward time (equal for every method) can
outweigh them. Terms as in DESIGN.md: mean acceptance length = committed tokens / decode steps per
sequence (accepted + bonus), acceptance rate = accepted / proposed draft tokens.
"""

from __future__ import annotations

import resource
import sys

from specscope.engine.scheduler import Sequence
from specscope.engine.timing import StepRecord, time_breakdown


def request_record(seq: Sequence, tokenizer=None, overlap=None) -> dict:
    """The JSON record of a finished sequence. `overlap(prompt, output_text)` adds bleu4_prompt_overlap."""
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
    committed = sum(seq.accepted) + len(seq.accepted)
    record["mean_acc_len"] = committed / len(seq.accepted) if seq.accepted else None
    record["steps"] = {"proposed": list(seq.proposed), "accepted": list(seq.accepted)}
    if overlap is not None and "output_text" in record and not seq.error:
        record["bleu4_prompt_overlap"] = overlap(req.meta.get("prompt"), record["output_text"])
    return record


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def summarize(sequences: list[Sequence], steps: list[StepRecord], wall_seconds: float) -> dict:
    """Totals over finished sequences and engine steps (settings are added by the caller)."""
    done = [s for s in sequences if not s.error]
    generated = sum(s.num_output for s in done)
    decode_steps = sum(len(s.accepted) for s in done)
    proposed = sum(sum(s.proposed) for s in done)
    accepted = sum(sum(s.accepted) for s in done)
    breakdown = time_breakdown(steps)
    step_seconds = sum(breakdown.values())
    decode = [s for s in steps if s.num_prefill == 0]
    decode_seconds = sum(s.seconds for s in decode)
    return {
        "num_requests": len(sequences),
        "num_completed": len(done),
        "num_errors": len(sequences) - len(done),
        "generated_tokens": generated,
        "wall_seconds": wall_seconds,
        "throughput_tok_s": generated / wall_seconds if wall_seconds > 0 else 0.0,
        "decode_throughput_tok_s": sum(s.committed for s in decode) / decode_seconds if decode_seconds > 0 else None,
        "num_steps": len(steps),
        "decode_steps": decode_steps,
        "mean_acc_len": (decode_steps + accepted) / decode_steps if decode_steps else None,
        "proposed_tokens": proposed,
        "accepted_tokens": accepted,
        "acceptance_rate": accepted / proposed if proposed else None,
        "time_breakdown_s": breakdown,
        "overhead_fraction": breakdown["overhead"] / step_seconds if step_seconds else None,
        "mean_step_s": step_seconds / len(steps) if steps else None,
        "peak_rss_mb": peak_rss_mb(),
    }
