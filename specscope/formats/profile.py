"""The profile CSV (`specscope profile` writes it, `fit-cost` reads it): columns, writer and reader.

Columns: step_kind, num_batched_tokens, num_kv_tokens, num_draft_tokens, seconds (`PROFILE_COLUMNS`, what
`fit-cost` needs), then batch_size (the sequences in the step: the measured surface's rows), k, context,
proposer (the proposer of an `overhead` / `sample` row timed in a speculative run; empty otherwise),
model and hardware (what was profiled, on every row; the fitted cost model records them) (`COLUMNS`).
Step kinds: `TARGET_KINDS` (target forward passes; `prefill` = a prompt, logits for its last token
only), `CONSTANT_KINDS` (per-step host work), `decision` (an online policy's own time per step),
`draft:<proposer>` (a drafting call) and `catch_up:<proposer>` (a drafting call whose drafter first takes in the
whole context: num_batched_tokens = the context tokens taken in). How each row is measured:
`specscope/engine/profiling.py`. Files without the later columns (older profiles, other tools) read
fine: batch_size then is unknown and `fit-cost` fits the linear form.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from specscope.errors import SpecscopeError, brief, shorten
from specscope.formats.files import atomic_open, read_csv_records

PROFILE_COLUMNS = ("step_kind", "num_batched_tokens", "num_kv_tokens", "num_draft_tokens", "seconds")

TARGET_KINDS = ("target", "prefill", "decode", "verify")  # target forward passes

CONSTANT_KINDS = ("overhead", "sample")  # per-step constants, added together

COLUMNS = PROFILE_COLUMNS + ("batch_size", "k", "context", "proposer", "model", "hardware")  # as `specscope profile`

DRAFT_PREFIX = "draft:"  # e.g. draft:eagle, draft:ngram
CATCH_UP_PREFIX = "catch_up:"  # e.g. catch_up:draft: the drafter's first call for sequences it has not seen
DECISION_KIND = "decision"  # an online (adaptive) policy's own time per step: charged only to such policies

MAX_TOKENS = 10**9  # most tokens a step (or its KV cache) holds: more is not a measurement
MIN_SECONDS, MAX_SECONDS = 1e-9, 1e6  # a timed step takes at least a nanosecond (a timer's resolution), under 12 days


def read_profile(path: str | os.PathLike) -> dict:
    """Read a profile CSV into column arrays (plus `step_kind` as an object array), validating every row.

    Token counts are integers in [0, MAX_TOKENS]; seconds a duration in [MIN_SECONDS, MAX_SECONDS]; batch_size
    (when the file has the column) an integer in [1, MAX_TOKENS]. One-line errors name the file and the line.
    Also `batch_size` (float array; None when the file has no such column), `proposer` (object array, "" where
    empty) and `identity` ({"model": ..., "hardware": ...}, the first non-empty values; {} when absent); other
    columns are allowed (and not read).
    """
    path = Path(path)
    header, records = read_csv_records(path, "profile file", exact=True)
    missing = [c for c in PROFILE_COLUMNS if c not in header]
    if missing:
        raise SpecscopeError(
            f"{path}:1: missing column(s) {', '.join(missing)}; a profile CSV has {','.join(PROFILE_COLUMNS)}"
        )
    kinds, ints, secs, batch, proposer, identity = [], [], [], [], [], {}
    has_batch = "batch_size" in header
    for lineno, row in records:
        kind = row["step_kind"].strip()
        if not (kind in TARGET_KINDS or kind in CONSTANT_KINDS or kind == DECISION_KIND or
                any(kind.startswith(p) and len(kind) > len(p) for p in (DRAFT_PREFIX, CATCH_UP_PREFIX))):
            raise SpecscopeError(
                f"{path}:{lineno}: step_kind {brief(kind)} is unknown; use one of "
                f"{', '.join(TARGET_KINDS + CONSTANT_KINDS + (DECISION_KIND,))}, {DRAFT_PREFIX}<proposer> or "
                f"{CATCH_UP_PREFIX}<proposer>"
            )
        ints.append([_count(row[col], col, path, lineno) for col in PROFILE_COLUMNS[1:4]])
        secs.append(_seconds(row["seconds"], path, lineno))
        kinds.append(kind)
        if has_batch:
            rows_in_step = _count(row["batch_size"], "batch_size", path, lineno)
            if rows_in_step < 1:
                raise SpecscopeError(f"{path}:{lineno}: batch_size = {rows_in_step} must be >= 1 (the sequences in "
                                     "the step)")
            batch.append(rows_in_step)
        proposer.append((row.get("proposer") or "").strip())
        for key in ("model", "hardware"):
            if not identity.get(key) and (row.get(key) or "").strip():
                identity[key] = row[key].strip()
    if not kinds:
        raise SpecscopeError(f"{path}: no data rows after the header")
    arr = np.array(ints, dtype=np.float64).reshape(-1, 3)
    return {
        "step_kind": np.array(kinds, dtype=object),
        "num_batched_tokens": arr[:, 0],
        "num_kv_tokens": arr[:, 1],
        "num_draft_tokens": arr[:, 2],
        "seconds": np.array(secs),
        "batch_size": np.array(batch, dtype=np.float64) if has_batch else None,
        "proposer": np.array(proposer, dtype=object),
        "identity": identity,
    }


def _count(text: str, column: str, path: Path, lineno: int) -> int:
    """A token count: an integer in [0, MAX_TOKENS] (an empty cell is 0)."""
    text = text.strip()
    try:
        value = int(text) if text else 0
    except ValueError:
        raise SpecscopeError(f"{path}:{lineno}: {column} = {brief(text)} is not an integer") from None
    if not 0 <= value <= MAX_TOKENS:
        raise SpecscopeError(f"{path}:{lineno}: {column} = {brief(value)} is not a token count "
                             f"(an integer from 0 to {MAX_TOKENS:.0e})")
    return value


def _seconds(text: str, path: Path, lineno: int) -> float:
    """A step's duration: a number of seconds in [MIN_SECONDS, MAX_SECONDS]."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        raise SpecscopeError(f"{path}:{lineno}: seconds = {brief(text)} is not a number") from None
    if not (math.isfinite(seconds) and MIN_SECONDS <= seconds <= MAX_SECONDS):
        raise SpecscopeError(f"{path}:{lineno}: seconds = {shorten(text, 40)} must be a positive duration, from "
                             f"{MIN_SECONDS:g} to {MAX_SECONDS:g} seconds")
    return seconds


def profile_row(kind, batched, kv, drafts, seconds, batch_size, k, context, proposer="") -> dict:
    """One row (a dict over COLUMNS but model and hardware, which `write_profile` adds)."""
    return dict(zip(COLUMNS, (kind, batched, kv, drafts, seconds, batch_size, k, context, proposer)))


def write_profile(path: str | os.PathLike, rows, model: str = "", hardware: str = "") -> None:
    """Write rows (dicts over COLUMNS) as the profile CSV, atomically; `model` and `hardware` go on every row."""
    with atomic_open(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            row = {"proposer": "", **row, "model": model, "hardware": hardware}
            writer.writerow([f"{row[c]:.9g}" if c == "seconds" else str(row[c]) for c in COLUMNS])
