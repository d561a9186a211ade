"""A measured cell's `summary.json`: its settings and totals, written once the cell is done.

Fields:
- request totals (`formats/requests.totals`): num_requests, num_completed, num_errors, generated_tokens,
  wall_seconds (the generation's: the engine and its drafter are built before the clock starts), throughput_tok_s, decode_steps, mean_acc_len (committed tokens per decode step),
  proposed_tokens, accepted_tokens, acceptance_rate (accepted / proposed drafts);
- what the backend measured (the built-in engine): decode_throughput_tok_s (steps that ran no prompt),
  num_steps, time_breakdown_s {draft, verify, sample, overhead}, overhead_fraction, mean_step_s,
  peak_rss_mb (peak_rss_scope "cell" in a sweep), kv_cache_mb, proposer_mb, model_mb, dtype, weight_format;
- the run: command, partial (interrupted: the finished requests only), model, method (how outputs name
  the proposer, e.g. `draft(self:16)`), proposer (its registry name, or `a,b` under adaptive), k,
  adaptive, cost_model, adaptive_choices, tree, batch_size, workload, source, num_prompts,
  max_new_tokens, temperature, top_p, seed, threads, device, output_dir;
- contention: how busy the machine was while the cell ran (`specscope/study/contention.py`): others_cpu
  (share of the CPU time other processes used), steal, own_cpu, load_avg, cpus, threads, busy;
- repeat: which of a sweep's repeated measurements of the cell this is (1, 2, ...; absent: 1).

Readers accept older files that put the settings under a "settings" object.
"""

from __future__ import annotations

import json
from pathlib import Path

from specscope.errors import SpecscopeError
from specscope.formats.files import write_json_atomic

PHASES = ("draft", "verify", "sample", "overhead")  # a step's time breakdown (the glossary's)
REQUIRED = ("method", "batch_size", "throughput_tok_s")


def write_summary(path: str | Path, summary: dict) -> None:
    write_json_atomic(path, summary)


def read_summary(path: Path) -> dict:
    """A `summary.json` as one flat dict (validated: a JSON object with the required fields)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpecscopeError(f"{path}: not valid JSON ({err}); delete the cell and re-run it") from None
    if not isinstance(obj, dict):
        raise SpecscopeError(f"{path}: expected a JSON object; delete the cell and re-run it")
    flat = {**obj.get("settings", {}), **{k: v for k, v in obj.items() if k != "settings"}}
    for key in REQUIRED:
        if key not in flat:
            raise SpecscopeError(f"{path}: missing '{key}'; re-run the cell with `specscope run`")
    return flat
