"""Per-position acceptance traces: the records, the native JSONL format, and the SpecDecode-Bench import.

A trace holds, for every request, the prompt, the output, and for each proposer the per-position
acceptance trace `acc_len[i]`: the tokens a step starting at output position i would commit with
lookahead k_max (accepted drafts + the bonus token, so always >= 1). See the glossary of docs/design.md.

Native format (JSON Lines), written by `write_trace` and by the engine:

    {"specscope_trace": 1, "model": ..., "proposers": ["ngram", "eagle"], "k_max": 20, "hardware": ..., "workload": ...}
    {"id": "0", "workload": ..., "prompt_token_ids": [...], "output_token_ids": [...],
     "acc_len": {"ngram": [...], "eagle": [...]}, "draft_confidence": {"eagle": [...]}}   # last field optional

Censored traces (from a server's per-step arrays, `trace_request_from_steps`): a server measured the
steps it ran with at most k drafts, so a step that accepted every draft it proposed only shows that the
acc_len there is at least drafts + 1. The header says `"censored_at": k + 1` (no value exceeds it) and
each request lists, per proposer, the positions whose value is such a lower bound:
`"censored": {"ngram": [5, 6, 7, ...]}`. A request without the list takes every value equal to
`censored_at` as censored. Replays read them through `RequestTrace.censored` (`simulator/grid.py` marks
the rows that depended on one as lower bounds).

Trees: the acc_len a proposer achieves when it drafts a tree of a given shape (`specscope/tree_spec.py`)
and greedy tree verification walks it is recorded as one more proposer, keyed `<proposer>@tree:<shape>`
with the shape's canonical label, e.g. `"eagle3@tree:3x2"` or `"eagle3@tree:dynamic:20:7x4"`, listed
in the header's `proposers` and stored in `acc_len` beside the chain's (`"eagle3"`) — same length,
values >= 1. Its values are capped by the tree's depth (a step commits at most `depth` tokens), not by
`k_max` (the chains' lookahead). Traces without such keys read as before; a reader that does not know
trees sees an extra proposer. `specscope simulate` prices a tree key as verifying all of the tree's
nodes every step (policy `tree`) and the oracle as verifying only the path it accepts.

SpecDecode-Bench format (read only; no header): one request per line with `prompt_token_ids`,
`generated_token_ids` and one `acc_<proposer>: {"acc_len": [...]}` field per proposer.

Everything is validated while reading (the file's bytes by `files.read_json_lines`): a problem raises
`SpecscopeError` naming the file, the line and the field. The rules beyond types:
- acc_len[i] >= 1, <= k_max + 1 (when the header has k_max), and <= G - i, the output positions left
  (a step cannot commit past the end; `specscope trace` records exactly that);
- header k_max an integer in [1, MAX_K]; ngram_min / ngram_max both or neither, integers >= 1, min <= max;
  model, hardware, workload strings; a request's prompt at least one token; ids unique.
No torch here: traces are read and written anywhere.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from specscope.errors import SpecscopeError, brief
from specscope.formats.files import atomic_open, read_json_lines
from specscope.settings import MAX_K
from specscope.tree_spec import split_tree_key

SCHEMA_VERSION = 1
NATIVE = "specscope"
SPECDECODE_BENCH = "specdecode-bench"
FORMATS = (NATIVE, SPECDECODE_BENCH)
HEADER_KEY = "specscope_trace"
CENSORED_AT = "censored_at"  # header field of a censored trace: k + 1
_SDB_PREFIX = "acc_"


@dataclass
class RequestTrace:
    """One request: its tokens and, per proposer, the acc_len at every output position."""

    id: str
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    acc_len: dict[str, np.ndarray]  # proposer -> [G] int64, values >= 1
    workload: str | None = None
    draft_confidence: dict[str, list] | None = None
    censored: dict[str, np.ndarray] | None = None  # proposer -> positions whose acc_len is a lower bound

    @property
    def prompt_len(self) -> int:
        return len(self.prompt_token_ids)

    def gen_len(self, proposers) -> int:
        """Output positions usable with these proposers: the shortest of their acc_len lists."""
        return min(len(self.acc_len[p]) for p in proposers)


@dataclass
class Trace:
    """A trace file in memory: header fields plus the requests, in file order."""

    requests: list[RequestTrace]
    proposers: list[str]
    model: str | None = None
    k_max: int | None = None
    hardware: str | None = None
    workload: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # header fields specscope does not interpret
    path: Path | None = None
    format: str = NATIVE
    dropped: int = 0  # SpecDecode-Bench requests with an empty acc_len list, skipped as its simulator does

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else "trace"

    def header(self) -> dict[str, Any]:
        return {
            HEADER_KEY: SCHEMA_VERSION,
            "model": self.model,
            "proposers": list(self.proposers),
            "k_max": self.k_max,
            "hardware": self.hardware,
            "workload": self.workload,
            **self.extra,
        }

    def require_proposers(self, names) -> None:
        """Raise a clear error if any of `names` has no acc_len in this trace."""
        for name in names:
            if name not in self.proposers:
                where = self.path if self.path is not None else "the trace"
                raise SpecscopeError(
                    f"{where}: no acc_len for proposer '{name}'. Present: {', '.join(self.proposers)}"
                )


# ---------------------------------------------------------------- reading


def read_trace(path: str | os.PathLike, trace_format: str | None = None) -> Trace:
    """Read and validate a trace file; the format is detected from its first line unless given."""
    path = Path(path)
    if trace_format is not None and trace_format not in FORMATS:
        raise SpecscopeError(f"Unknown trace format '{trace_format}'. Available: {', '.join(FORMATS)}")
    lines = [(lineno, obj, "true" in text or "false" in text)  # whether a line has booleans: `_int_array`
             for lineno, obj, text in read_json_lines(path, "trace file")]
    if not lines:
        raise SpecscopeError(f"{path}: the file is empty; a trace needs at least one request line")
    fmt = trace_format or detect_format(path, lines[0][1])
    reader = _read_native if fmt == NATIVE else _read_specdecode_bench
    return reader(path, lines)


def detect_format(path: Path, first: dict) -> str:
    """`specscope` if the first line is a native header, `specdecode-bench` if it is a SDB request."""
    if HEADER_KEY in first:
        return NATIVE
    if "generated_token_ids" in first or any(k.startswith(_SDB_PREFIX) for k in first):
        return SPECDECODE_BENCH
    raise SpecscopeError(
        f"{path}:1: cannot tell the trace format: the first line is neither a specscope header "
        f"(with '{HEADER_KEY}') nor a SpecDecode-Bench request (with 'generated_token_ids'); "
        f"pass --trace-format {NATIVE} or --trace-format {SPECDECODE_BENCH}"
    )


def _read_native(path: Path, lines: list[tuple[int, dict]]) -> Trace:
    lineno, header, _ = lines[0]
    where = f"{path}:{lineno}"
    if HEADER_KEY not in header:
        raise SpecscopeError(
            f"{where}: missing field '{HEADER_KEY}': the first line of a native trace is its header "
            f"(or pass --trace-format {SPECDECODE_BENCH} for a SpecDecode-Bench file)"
        )
    if not _is_int(header[HEADER_KEY]) or header[HEADER_KEY] != SCHEMA_VERSION:
        raise SpecscopeError(
            f"{where}: field '{HEADER_KEY}' is {brief(header[HEADER_KEY])}; this specscope reads version {SCHEMA_VERSION}"
        )
    proposers = header.get("proposers")
    if not isinstance(proposers, list) or not proposers or not all(isinstance(p, str) and p for p in proposers):
        raise SpecscopeError(f"{where}: field 'proposers' must be a non-empty list of proposer names")
    if len(set(proposers)) != len(proposers):
        raise SpecscopeError(f"{where}: field 'proposers' lists a proposer twice")
    k_max = header.get("k_max")
    if k_max is not None and (not _is_int(k_max) or not 1 <= k_max <= MAX_K):
        raise SpecscopeError(f"{where}: field 'k_max' = {brief(k_max)}: the lookahead is an integer between 1 and "
                             f"{MAX_K}")
    _check_header(header, where)
    censored_at = header.get(CENSORED_AT)
    if censored_at is not None and (not _is_int(censored_at) or censored_at < 1):
        raise SpecscopeError(f"{where}: field '{CENSORED_AT}' must be a positive integer, got {censored_at!r}")
    known = {HEADER_KEY, "model", "proposers", "k_max", "hardware", "workload"}
    trace = Trace(
        requests=[],
        proposers=list(proposers),
        model=header.get("model"),
        k_max=k_max,
        hardware=header.get("hardware"),
        workload=header.get("workload"),
        extra={k: v for k, v in header.items() if k not in known},
        path=path,
        format=NATIVE,
    )
    if len(lines) == 1:
        raise SpecscopeError(f"{path}: the trace has a header but no request lines")
    caps = {name: _acc_cap(name, k_max, where) for name in proposers}  # most tokens a step commits, per proposer
    seen: set[str] = set()
    for lineno, obj, bools in lines[1:]:
        where = f"{path}:{lineno}"
        if HEADER_KEY in obj:
            raise SpecscopeError(f"{where}: a second header line; a trace file holds exactly one header")
        req_id = _request_id(obj, where)
        if req_id in seen:
            raise SpecscopeError(f"{where}: field 'id': request id '{req_id}' appears twice")
        seen.add(req_id)
        prompt = _token_ids(obj, "prompt_token_ids", where, bools)
        output = _token_ids(obj, "output_token_ids", where, bools)
        acc_obj = _field(obj, "acc_len", where)
        if not isinstance(acc_obj, dict):
            raise SpecscopeError(f"{where}: field 'acc_len' must be an object mapping proposer -> list")
        acc = {}
        for name in proposers:
            if name not in acc_obj:
                raise SpecscopeError(
                    f"{where}: missing field 'acc_len.{name}' (the header lists proposer '{name}')"
                )
            acc[name] = _acc_list(acc_obj[name], f"acc_len.{name}", where, caps[name], bools=bools)
            if len(acc[name]) != len(output):
                raise SpecscopeError(
                    f"{where}: field 'acc_len.{name}' has {len(acc[name])} values but 'output_token_ids' has "
                    f"{len(output)} tokens; there is one acc_len per output position"
                )
        for name in acc_obj:
            if name not in proposers:
                raise SpecscopeError(
                    f"{where}: field 'acc_len.{name}': proposer '{name}' is not listed in the header's 'proposers'"
                )
        confidence = obj.get("draft_confidence")
        if confidence is not None:
            _check_confidence(confidence, acc, where)
        censored = _censored(obj.get("censored"), acc, censored_at, where)
        workload = obj.get("workload", trace.workload)
        if workload is not None and not isinstance(workload, str):
            raise SpecscopeError(f"{where}: field 'workload' = {brief(workload)} must be a name (a string)")
        trace.requests.append(RequestTrace(req_id, prompt, output, acc, workload, confidence, censored))
    return trace


def _acc_cap(name: str, k_max: int | None, where: str) -> int | None:
    """The k_max an acc_len list is checked against: the header's, or for a tree key its depth - 1."""
    try:
        _, tree = split_tree_key(name)
    except SpecscopeError as err:
        raise SpecscopeError(f"{where}: field 'proposers': '{name}' names no tree shape ({err})") from None
    return k_max if tree is None else tree.depth - 1


def _read_specdecode_bench(path: Path, lines: list[tuple[int, dict]]) -> Trace:
    first_line, first, _ = lines[0]
    names = [k[len(_SDB_PREFIX):] for k in first if k.startswith(_SDB_PREFIX) and len(k) > len(_SDB_PREFIX)]
    if not names:
        raise SpecscopeError(
            f"{path}:{first_line}: no 'acc_<proposer>' field; a SpecDecode-Bench line has e.g. "
            "'acc_eagle': {\"acc_len\": [...]}"
        )
    trace = Trace(requests=[], proposers=names, path=path, format=SPECDECODE_BENCH)
    seen: set[str] = set()
    for lineno, obj, bools in lines:
        where = f"{path}:{lineno}"
        if HEADER_KEY in obj:
            raise SpecscopeError(f"{where}: a specscope header inside a SpecDecode-Bench file")
        req_id = _request_id(obj, where) if "id" in obj else str(lineno)
        if req_id in seen:
            raise SpecscopeError(f"{where}: field 'id': request id '{req_id}' appears twice")
        seen.add(req_id)
        prompt = _token_ids(obj, "prompt_token_ids", where, bools)
        output = _token_ids(obj, "generated_token_ids", where, bools)
        acc = {}
        for name in names:
            key = _SDB_PREFIX + name
            value = _field(obj, key, where, hint=f"(present on line {first_line})")
            if isinstance(value, dict):
                value = _field(value, "acc_len", where, prefix=f"{key}.")
                acc[name] = _acc_list(value, f"{key}.acc_len", where, None, allow_empty=True, bools=bools)
            else:
                acc[name] = _acc_list(value, key, where, None, allow_empty=True, bools=bools)
        if min(len(a) for a in acc.values()) == 0:
            trace.dropped += 1  # the published simulator skips requests with nothing generated
            continue
        trace.requests.append(RequestTrace(req_id, prompt, output, acc))
    if not trace.requests:
        raise SpecscopeError(f"{path}: every request has an empty acc_len list; nothing to simulate")
    return trace


def _field(obj: dict, key: str, where: str, hint: str = "", prefix: str = ""):
    if key not in obj:
        raise SpecscopeError(f"{where}: missing field '{prefix}{key}' {hint}".rstrip())
    return obj[key]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request_id(obj: dict, where: str) -> str:
    value = _field(obj, "id", where)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpecscopeError(f"{where}: field 'id' must be a string or an integer, got {brief(value)}")
    return str(value)


def _token_ids(obj: dict, key: str, where: str, bools: bool = True) -> list[int]:
    value = _field(obj, key, where)
    arr = _int_array(value, bools)
    if arr is None or (arr.size and arr.min() < 0):
        raise SpecscopeError(f"{where}: field '{key}' must be a list of non-negative integer token ids")
    if key == "prompt_token_ids" and not arr.size:
        raise SpecscopeError(f"{where}: field '{key}' is empty; a request has a prompt of at least one token")
    return value


def _int_array(value, bools: bool = True) -> np.ndarray | None:
    """`value` as an int64 array if it is a list of JSON integers (not bools, not floats), else None.

    numpy reads True as 1, so booleans are looked for element by element — only when `bools` says
    the line has any.
    """
    if not isinstance(value, list):
        return None
    if not value:
        return np.zeros(0, dtype=np.int64)
    try:
        arr = np.array(value)
    except (ValueError, OverflowError):
        return None
    if arr.dtype.kind != "i" or arr.ndim != 1 or (bools and any(v.__class__ is bool for v in value)):
        return None
    return arr.astype(np.int64, copy=False)


def _acc_list(value, name: str, where: str, k_max: int | None, allow_empty: bool = False,
              bools: bool = True) -> np.ndarray:
    arr = _int_array(value, bools)
    if arr is None:
        bad = _first_bad(value, lambda v: _is_int(v)) if isinstance(value, list) else None
        at = f"[{bad}] = {brief(value[bad])}" if bad is not None else f" = {type(value).__name__}"
        raise SpecscopeError(
            f"{where}: field '{name}'{at}: acc_len must be a list of integers >= 1 (tokens committed per step)"
        )
    if arr.size == 0 and not allow_empty:
        raise SpecscopeError(f"{where}: field '{name}' is empty; a request needs at least one output position")
    low = np.flatnonzero(arr < 1)
    if low.size:
        i = int(low[0])
        raise SpecscopeError(
            f"{where}: field '{name}'[{i}] = {int(arr[i])}: acc_len values are >= 1 "
            "(accepted drafts + the bonus token)"
        )
    if k_max is not None:
        high = np.flatnonzero(arr > k_max + 1)
        if high.size:
            i = int(high[0])
            limit = (f"the tree's depth {k_max + 1}" if "@tree:" in name else f"k_max + 1 = {k_max + 1} from the header")
            raise SpecscopeError(f"{where}: field '{name}'[{i}] = {int(arr[i])} exceeds {limit}")
    past = np.flatnonzero(arr > len(arr) - np.arange(len(arr)))  # a step at i commits at most the G - i left
    if past.size:
        i = int(past[0])
        raise SpecscopeError(
            f"{where}: field '{name}'[{i}] = {int(arr[i])}: only {len(arr) - i} output position(s) are left from "
            f"position {i} of {len(arr)}; a step cannot commit past the end of the output"
        )
    return arr


def _check_header(header: dict, where: str) -> None:
    """The header's optional fields: names are strings, the n-gram settings a range of integers >= 1."""
    for key in ("model", "hardware", "workload"):
        value = header.get(key)
        if value is not None and not isinstance(value, str):
            raise SpecscopeError(f"{where}: field '{key}' = {brief(value)} must be a string (or null)")
    low, high = header.get("ngram_min"), header.get("ngram_max")
    for key, value in (("ngram_min", low), ("ngram_max", high)):
        if value is not None and (not _is_int(value) or value < 1):
            raise SpecscopeError(f"{where}: field '{key}' = {brief(value)}: n-gram lengths are integers >= 1 "
                                 "(the settings the trace was recorded with)")
    if (low is None) != (high is None):
        raise SpecscopeError(f"{where}: field '{'ngram_max' if high is None else 'ngram_min'}' is missing; a trace "
                             "records both n-gram lengths or neither")
    if low is not None and low > high:
        raise SpecscopeError(f"{where}: field 'ngram_min' = {low} is larger than 'ngram_max' = {high}")


def _first_bad(values: list, ok) -> int | None:
    for i, v in enumerate(values):
        if not ok(v):
            return i
    return None


def _check_confidence(confidence, acc: dict[str, np.ndarray], where: str) -> None:
    if not isinstance(confidence, dict):
        raise SpecscopeError(f"{where}: field 'draft_confidence' must be an object mapping proposer -> list")
    for name, values in confidence.items():
        field_name = f"draft_confidence.{name}"
        if name not in acc:
            raise SpecscopeError(f"{where}: field '{field_name}': proposer '{name}' has no acc_len in this trace")
        if not isinstance(values, list) or len(values) != len(acc[name]):
            raise SpecscopeError(
                f"{where}: field '{field_name}' must be a list with one entry per output position ({len(acc[name])})"
            )
        for i, v in enumerate(values):
            items = v if isinstance(v, list) else [v]
            if not all(_is_prob(x) for x in items):
                raise SpecscopeError(
                    f"{where}: field '{field_name}'[{i}] = {brief(v)}: confidences are numbers in [0, 1] (or lists of them)"
                )


def _censored(value, acc: dict[str, np.ndarray], censored_at: int | None, where: str) -> dict[str, np.ndarray] | None:
    """A request's censored positions per proposer (module docstring): its own lists, else the values equal to
    the header's `censored_at`; None when nothing is censored."""
    if value is None:
        if censored_at is None:
            return None
        out = {name: np.flatnonzero(a == censored_at) for name, a in acc.items()}
        return out if any(p.size for p in out.values()) else None
    if not isinstance(value, dict):
        raise SpecscopeError(f"{where}: field 'censored' must be an object mapping proposer -> list of positions")
    out = {}
    for name, positions in value.items():
        if name not in acc:
            raise SpecscopeError(f"{where}: field 'censored.{name}': proposer '{name}' has no acc_len in this trace")
        arr = _int_array(positions)
        if arr is None or (arr.size and (arr.min() < 0 or arr.max() >= len(acc[name]) or np.any(np.diff(arr) <= 0))):
            raise SpecscopeError(f"{where}: field 'censored.{name}' must list increasing output positions "
                                 f"in 0..{len(acc[name]) - 1}")
        out[name] = arr
    return out or None


def _is_prob(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0.0 <= x <= 1.0


# ---------------------------------------------------------------- writing


def write_trace(path: str | os.PathLike, trace: Trace) -> None:
    """Write `trace` in the native format, atomically (complete file or none)."""
    with atomic_open(path) as fh:
        fh.write(json.dumps(trace.header()) + "\n")
        for req in trace.requests:
            fh.write(json.dumps(request_record(req, trace.proposers), separators=(",", ":")) + "\n")


def request_record(req: RequestTrace, proposers) -> dict[str, Any]:
    """The native JSON object of one request."""
    record: dict[str, Any] = {"id": req.id}
    if req.workload is not None:
        record["workload"] = req.workload
    record["prompt_token_ids"] = [int(t) for t in req.prompt_token_ids]
    record["output_token_ids"] = [int(t) for t in req.output_token_ids]
    record["acc_len"] = {p: [int(v) for v in req.acc_len[p]] for p in proposers}
    if req.draft_confidence:
        record["draft_confidence"] = req.draft_confidence
    if req.censored:
        record["censored"] = {p: [int(i) for i in req.censored[p]] for p in proposers if p in req.censored}
    return record


# ---------------------------------------------------------------- from a server's per-step arrays


def acc_len_from_steps(num_output: int, proposed: list[int], accepted: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-position acc_len of one request from the decode steps a server ran, and its censored positions.

    Position 0 (the prefill's token) is 1, as in every native trace. The step that started at position p
    and accepted a drafts gives acc_len[p] = a + 1 and, for the positions it skipped, acc_len[p + j] =
    a + 1 - j (the rest of its accepted draft: what a step starting there would have kept, exact for a
    proposer whose drafts continue one another, as a greedy draft model's do). A step that accepted every
    draft it proposed (a = drafted > 0) was stopped by its k, not by a rejection: its positions are
    censored (lower bounds). A step that drafted nothing commits 1 and is taken as exact (its proposer had
    nothing to offer there: an n-gram without a match). None when the steps do not account for exactly
    `num_output` tokens (e.g. a server that leaves steps without drafts out of its arrays).
    """
    if len(proposed) != len(accepted) or num_output < 1:
        return None
    acc = np.ones(num_output, dtype=np.int64)
    censored: list[int] = []
    pos = 1
    for drafted, kept in zip(proposed, accepted):
        if pos + kept >= num_output:  # commits past the output
            return None
        acc[pos: pos + kept + 1] = np.arange(kept + 1, 0, -1)
        if 0 < drafted == kept:
            censored.extend(range(pos, pos + kept + 1))
        pos += kept + 1
    if pos != num_output:
        return None
    return acc, np.asarray(censored, dtype=np.int64)
