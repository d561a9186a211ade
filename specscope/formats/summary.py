"""A measured cell's `summary.json`: its settings and totals, written once the cell is done.

Fields:
- request totals (`formats/requests.totals`): num_requests, num_completed, num_errors, generated_tokens,
  wall_seconds, throughput_tok_s, decode_steps, mean_acc_len (committed tokens per decode step),
  proposed_tokens, accepted_tokens, acceptance_rate (accepted / proposed drafts);
- what the backend measured (the built-in engine): decode_throughput_tok_s (steps that ran no prompt),
  num_steps, time_breakdown_s {draft, verify, sample, overhead}, overhead_fraction, mean_step_s,
  peak_rss_mb (peak_rss_scope "cell" in a sweep), kv_cache_mb, proposer_mb, model_mb, dtype, weight_format;
- the run: command, partial (interrupted: the finished requests only), model, method (the proposer's
  registry name, `a,b` under adaptive, `none` for plain decoding), label (how outputs name what
  drafted, e.g. `draft(self:16)`, `adaptive(ngram+draft(self:16))`), k, adaptive, cost_model,
  adaptive_choices, tree, batch_size, workload, source, num_prompts, max_new_tokens, temperature,
  top_p, seed, threads, device, output_dir.

Readers accept older files: settings under a "settings" object, and before `label` existed, `method`
was the label and `proposer` the registry name (`read_summary` returns the current names).
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
    if "label" not in flat and "proposer" in flat:  # an older file: `method` was the label
        flat["label"], flat["method"] = flat["method"], flat.pop("proposer")
    for key in REQUIRED:
        if key not in flat:
            raise SpecscopeError(f"{path}: missing '{key}'; re-run the cell with `specscope run`")
    return flat
