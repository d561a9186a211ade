"""A measured cell's `summary.json`: its settings and totals, written once the cell is done.

Fields:
- request totals (`formats/requests.totals`): num_requests, num_completed, num_errors, generated_tokens,
  wall_seconds (the generation's: the engine and its drafter are built before the clock starts),
  throughput_tok_s, decode_steps, mean_acc_len (committed tokens per decode step), proposed_tokens, accepted_tokens, acceptance_rate (accepted / proposed drafts);
- what the backend measured (the built-in engine): decode_throughput_tok_s (steps that ran no prompt),
  num_steps, time_breakdown_s {draft, verify, sample, overhead}, overhead_fraction, mean_step_s,
  peak_rss_mb (peak_rss_scope "cell" in a sweep), kv_cache_mb, proposer_mb, model_mb, dtype, weight_format;
- the run: command, partial (interrupted: the finished requests only), model, method (the proposer's
  registry name, `a,b` under adaptive, `none` for plain decoding), label (how outputs name what
  drafted, e.g. `draft(self:16)`, `adaptive(ngram+draft(self:16))`), k, adaptive, cost_model,
  adaptive_choices, tree, batch_size, workload, source, num_prompts, max_new_tokens, temperature,
  top_p, seed, threads, device, output_dir;
- contention: how busy the machine was while the cell ran (`specscope/study/contention.py`): others_cpu
  (share of the CPU time other processes used), steal, own_cpu, load_avg, cpus, threads, busy;
- repeat: which of a sweep's repeated measurements of the cell this is (1, 2, ...; absent: 1).

Readers accept older files: settings under a "settings" object, and before `label` existed, `method`
was the label and `proposer` the registry name (`read_summary` returns the current names).
"""

from __future__ import annotations

import math
from pathlib import Path

from specscope.errors import SpecscopeError, brief
from specscope.formats.files import read_json_object, write_json_atomic

PHASES = ("draft", "verify", "sample", "overhead")  # a step's time breakdown (the glossary's)
REQUIRED = ("method", "batch_size", "throughput_tok_s")
NUMBERS = ("throughput_tok_s", "generated_tokens", "wall_seconds", "mean_acc_len", "acceptance_rate", "peak_rss_mb",
           "temperature", "decode_throughput_tok_s")  # finite numbers >= 0 where present (null: not measured)
FIX = "delete the cell and re-run it"


def write_summary(path: str | Path, summary: dict) -> None:
    write_json_atomic(path, summary)


def read_summary(path: Path) -> dict:
    """A `summary.json` as one flat dict, validated: a JSON object with the required fields, and the fields
    readers compute with of the right type (one-line errors naming the file and the field)."""
    return summary_fields(read_json_object(path, "summary file", hint=FIX), path)


def summary_fields(obj: dict, path: Path) -> dict:
    """`read_summary` of a summary already read as a JSON object (from `path`, which the errors name)."""
    settings = obj.get("settings", {})
    if not isinstance(settings, dict):
        raise SpecscopeError(f"{path}: field 'settings' must be an object; {FIX}")
    flat = {**settings, **{k: v for k, v in obj.items() if k != "settings"}}
    if "label" not in flat and "proposer" in flat:  # an older file: `method` was the label
        flat["label"], flat["method"] = flat["method"], flat.pop("proposer")
    for key in REQUIRED:
        if key not in flat:
            raise SpecscopeError(f"{path}: missing '{key}'; re-run the cell with `specscope run`")
    if not isinstance(flat["method"], str) or not flat["method"]:
        raise SpecscopeError(f"{path}: field 'method' = {brief(flat['method'])} must be a method's name; {FIX}")
    if flat.get("proposer") is not None and not isinstance(flat["proposer"], str):
        raise SpecscopeError(f"{path}: field 'proposer' = {brief(flat['proposer'])} must be a name; {FIX}")
    _integer(flat, "batch_size", 1, path)
    if flat.get("k") is not None:
        _integer(flat, "k", 0, path)
    if flat.get("threads") is not None:
        _integer(flat, "threads", 1, path)
    if flat.get("repeat") is not None:
        _integer(flat, "repeat", 1, path)
    if flat.get("contention") is not None and not isinstance(flat["contention"], dict):
        raise SpecscopeError(f"{path}: field 'contention' = {brief(flat['contention'])} must be an object; {FIX}")
    for key in NUMBERS:
        if flat.get(key) is not None or key == "throughput_tok_s":
            _number(flat[key], key, path)
    breakdown = flat.get("time_breakdown_s")
    if breakdown is not None:
        if not isinstance(breakdown, dict):
            raise SpecscopeError(f"{path}: field 'time_breakdown_s' must be an object of seconds per phase; {FIX}")
        for phase, value in breakdown.items():
            if value is not None:
                _number(value, f"time_breakdown_s.{phase}", path)
    for key in ("partial", "adaptive"):
        if not isinstance(flat.get(key, False), bool):
            raise SpecscopeError(f"{path}: field '{key}' = {brief(flat[key])} must be true or false; {FIX}")
    if flat.get("adaptive_choices") is not None:
        _check_choices(flat["adaptive_choices"], path)
    return flat


def _check_choices(choices, path) -> None:
    """`adaptive_choices`: shares and mean k (numbers or null), per proposer under `proposers`."""
    where = "adaptive_choices"
    if not isinstance(choices, dict) or not isinstance(choices.get("proposers", {}), dict):
        raise SpecscopeError(f"{path}: field '{where}' must be an object with a 'proposers' object; {FIX}")
    for key, value in choices.items():
        if key != "proposers" and value is not None:
            _number(value, f"{where}.{key}", path)
    for name, entry in choices.get("proposers", {}).items():
        if not isinstance(entry, dict):
            raise SpecscopeError(f"{path}: field '{where}.proposers.{name}' must be an object; {FIX}")
        for key, value in entry.items():
            if value is not None:
                _number(value, f"{where}.proposers.{name}.{key}", path)


def _integer(flat: dict, key: str, low: int, path) -> None:
    value = flat[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecscopeError(f"{path}: field '{key}' = {brief(value)} must be an integer >= {low}; {FIX}")


def _number(value, key: str, path) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SpecscopeError(f"{path}: field '{key}' = {brief(value)} must be a finite number >= 0; {FIX}")
