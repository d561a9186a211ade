"""Cost models: how long a target step, a draft step and the per-step overhead take.

Forms (DESIGN.md, "Cost model"), all in seconds:

- target step   T(N, KV) = c_fixed + c_tok * N + c_kv * KV
                N = tokens in the step (all sequences batched), KV = tokens held in the KV cache by
                the running sequences at the start of the step.
- draft step, one form per proposer:
    `linear`           c_fixed + c_tok * tokens + c_kv * KV, where tokens = k + 1 per drafting
                       sequence (the last committed token plus the k drafts: the "scheduled tokens" of
                       the published fit) and KV is the batch's KV;
    `verify_fraction`  fraction * T(N, KV) of the same step (cheap host-side proposers such as n-gram).
- overhead      a constant per step (scheduling, bookkeeping, sampling), plus `switching` per
                sequence whose proposer differs from the one it drafted with last.

Presets are TOML data files in `specscope/presets/` (one per model x hardware) with their provenance;
`load_cost_model` takes a preset name or a path to such a file. `fit_cost_model` fits a cost model from
a profile CSV (columns `step_kind, num_batched_tokens, num_kv_tokens, num_draft_tokens, seconds`) by
least squares with non-negative coefficients. No torch here.
"""

from __future__ import annotations

import csv
import datetime as _dt
import itertools
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from specscope.errors import SpecscopeError, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRESET_DIR = Path(__file__).parent / "presets"
ADAPTIVE_DEFAULT = "smollm2-135m-cpu"  # the cost model `--k adaptive` decides under when none is named
LINEAR = "linear"
VERIFY_FRACTION = "verify_fraction"
DRAFT_FORMS = (LINEAR, VERIFY_FRACTION)


@dataclass(frozen=True)
class LinearCost:
    """c_fixed + c_tok * tokens + c_kv * kv  (works on scalars and numpy arrays)."""

    c_fixed: float
    c_tok: float
    c_kv: float

    def __call__(self, tokens, kv):
        return self.c_fixed + self.c_tok * tokens + self.c_kv * kv

    def as_dict(self) -> dict[str, float]:
        return {"c_fixed": self.c_fixed, "c_tok": self.c_tok, "c_kv": self.c_kv}


@dataclass(frozen=True)
class VerifyFraction:
    """A draft step that costs a fixed fraction of the target step it precedes."""

    fraction: float

    def __call__(self, verify_time):
        return self.fraction * verify_time

    def as_dict(self) -> dict[str, float]:
        return {"fraction": self.fraction}


DraftCost = Union[LinearCost, VerifyFraction]


@dataclass(frozen=True)
class CostModel:
    """Target, draft and overhead costs of one model on one machine."""

    name: str
    target: LinearCost
    overhead: float  # seconds per step
    drafts: dict[str, DraftCost]
    switching: float = 0.0  # seconds per sequence that changes proposer
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def draft(self, proposer: str) -> DraftCost:
        if proposer not in self.drafts:
            have = ", ".join(sorted(self.drafts)) or "none"
            raise SpecscopeError(
                f"cost model '{self.name}' has no draft cost for proposer '{proposer}' (it has: {have}); "
                f"add a [draft.{proposer}] table to the cost model or fit one with `specscope fit-cost`"
            )
        return self.drafts[proposer]

    def to_toml_dict(self) -> dict[str, Any]:
        drafts = {}
        for name, form in self.drafts.items():
            kind = LINEAR if isinstance(form, LinearCost) else VERIFY_FRACTION
            drafts[name] = {"form": kind, **form.as_dict()}
        return {
            "name": self.name,
            "description": self.description,
            "units": "seconds",
            "provenance": self.provenance,
            "target": self.target.as_dict(),
            "overhead": {"per_step": self.overhead, "switching": self.switching},
            "draft": drafts,
        }


# ---------------------------------------------------------------- presets


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_cost_model(name_or_path: str | os.PathLike) -> CostModel:
    """A preset by name (see `available_presets`) or a cost-model TOML file by path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise SpecscopeError(f"cost model file '{path}' does not exist")
        return read_cost_model(path)
    preset = PRESET_DIR / f"{text}.toml"
    if not preset.is_file():
        err = unknown_name("cost model", text, available_presets())
        raise SpecscopeError(f"{err} (or pass the path of a cost-model .toml file)")
    return read_cost_model(preset)


def read_cost_model(path: Path) -> CostModel:
    """Parse and validate a cost-model TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecscopeError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise SpecscopeError(f"{path}: cannot read ({err.strerror})") from None
    target = _linear(data, "target", path)
    overhead_table = _table(data, "overhead", path)
    overhead = _coefficient(overhead_table, "per_step", "overhead", path)
    switching = _coefficient(overhead_table, "switching", "overhead", path, default=0.0)
    drafts: dict[str, DraftCost] = {}
    for name, table in _table(data, "draft", path, default={}).items():
        section = f"draft.{name}"
        if not isinstance(table, dict):
            raise SpecscopeError(f"{path}: [{section}] must be a table")
        form = table.get("form", LINEAR)
        if form == LINEAR:
            drafts[name] = _linear(data["draft"], name, path, section=section)
        elif form == VERIFY_FRACTION:
            drafts[name] = VerifyFraction(_coefficient(table, "fraction", section, path))
        else:
            raise SpecscopeError(
                f"{path}: [{section}] form = {form!r} is unknown. Available: {', '.join(DRAFT_FORMS)}"
            )
    name = data.get("name", path.stem)
    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict):
        raise SpecscopeError(f"{path}: [provenance] must be a table")
    return CostModel(
        name=str(name),
        target=target,
        overhead=overhead,
        drafts=drafts,
        switching=switching,
        description=str(data.get("description", "")),
        provenance=provenance,
        source=path,
    )


def _table(data: dict, key: str, path: Path, default=None) -> dict:
    if key not in data:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: missing table [{key}]")
    if not isinstance(data[key], dict):
        raise SpecscopeError(f"{path}: [{key}] must be a table")
    return data[key]


def _coefficient(table: dict, key: str, section: str, path: Path, default: float | None = None) -> float:
    if key not in table:
        if default is not None:
            return default
        raise SpecscopeError(f"{path}: [{section}] is missing '{key}'")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecscopeError(f"{path}: [{section}] {key} = {value!r} is not a finite number")
    if value < 0:
        raise SpecscopeError(
            f"{path}: [{section}] {key} = {value!r} is negative; cost coefficients are seconds and must be >= 0"
        )
    return float(value)


def _linear(data: dict, key: str, path: Path, section: str | None = None) -> LinearCost:
    section = section or key
    table = _table(data, key, path)
    return LinearCost(*(_coefficient(table, c, section, path) for c in ("c_fixed", "c_tok", "c_kv")))


def write_cost_model(path: str | os.PathLike, model: CostModel, header_comment: str = "") -> None:
    """Write `model` as a cost-model TOML file, atomically."""
    import tomli_w

    from specscope.fileio import write_text_atomic

    text = tomli_w.dumps(model.to_toml_dict())
    if header_comment:
        text = "".join(f"# {line}\n" for line in header_comment.splitlines()) + text
    write_text_atomic(path, text)


# ---------------------------------------------------------------- fitting

PROFILE_COLUMNS = ("step_kind", "num_batched_tokens", "num_kv_tokens", "num_draft_tokens", "seconds")
TARGET_KINDS = ("target", "prefill", "decode", "verify")  # target forward passes
CONSTANT_KINDS = ("overhead", "sample")  # per-step constants, added together
DRAFT_PREFIX = "draft:"  # e.g. draft:eagle, draft:ngram


@dataclass(frozen=True)
class FitTerm:
    """One fitted component: its rows, coefficients and relative error |pred - y| / y."""

    kind: str
    rows: int
    coefficients: dict[str, float]
    mean_relative_error: float
    max_relative_error: float


def read_profile(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a profile CSV into column arrays (plus `step_kind` as an object array), validating every row."""
    path = Path(path)
    if not path.is_file():
        raise SpecscopeError(f"profile file '{path}' does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise SpecscopeError(f"{path}: the file is empty; expected a CSV header {','.join(PROFILE_COLUMNS)}")
        missing = [c for c in PROFILE_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise SpecscopeError(
                f"{path}:1: missing column(s) {', '.join(missing)}; a profile CSV has {','.join(PROFILE_COLUMNS)}"
            )
        kinds, ints, secs = [], [], []
        for row in reader:
            lineno = reader.line_num
            kind = (row["step_kind"] or "").strip()
            if not (kind in TARGET_KINDS or kind in CONSTANT_KINDS or
                    (kind.startswith(DRAFT_PREFIX) and len(kind) > len(DRAFT_PREFIX))):
                raise SpecscopeError(
                    f"{path}:{lineno}: step_kind {kind!r} is unknown; use one of "
                    f"{', '.join(TARGET_KINDS + CONSTANT_KINDS)} or {DRAFT_PREFIX}<proposer>"
                )
            values = []
            for col in PROFILE_COLUMNS[1:4]:
                text = (row[col] or "").strip()
                try:
                    value = int(text) if text else 0
                except ValueError:
                    raise SpecscopeError(f"{path}:{lineno}: {col} = {text!r} is not an integer") from None
                if value < 0:
                    raise SpecscopeError(f"{path}:{lineno}: {col} = {value} is negative")
                values.append(value)
            text = (row["seconds"] or "").strip()
            try:
                seconds = float(text)
            except ValueError:
                raise SpecscopeError(f"{path}:{lineno}: seconds = {text!r} is not a number") from None
            if not math.isfinite(seconds) or seconds <= 0:
                raise SpecscopeError(f"{path}:{lineno}: seconds = {text} must be a positive duration")
            kinds.append(kind)
            ints.append(values)
            secs.append(seconds)
    if not kinds:
        raise SpecscopeError(f"{path}: no data rows after the header")
    arr = np.array(ints, dtype=np.float64).reshape(-1, 3)
    return {
        "step_kind": np.array(kinds, dtype=object),
        "num_batched_tokens": arr[:, 0],
        "num_kv_tokens": arr[:, 1],
        "num_draft_tokens": arr[:, 2],
        "seconds": np.array(secs),
    }


def nonnegative_least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ||x @ c - y|| subject to c >= 0, exactly, for a handful of columns.

    The optimum is the unconstrained least-squares solution on its own support, so trying every
    subset of columns and keeping the best feasible solution finds it (2^columns small solves).
    """
    n_cols = x.shape[1]
    scale = np.linalg.norm(x, axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale
    best, best_err = np.zeros(n_cols), float(np.sum(y**2))
    for size in range(1, n_cols + 1):
        for subset in itertools.combinations(range(n_cols), size):
            cols = list(subset)
            coef, *_ = np.linalg.lstsq(xs[:, cols], y, rcond=None)
            if np.any(coef < 0):
                continue
            err = float(np.sum((xs[:, cols] @ coef - y) ** 2))
            if err < best_err:
                best = np.zeros(n_cols)
                best[cols] = coef
                best_err = err
    return best / scale


def _fit_linear(kind: str, tokens: np.ndarray, kv: np.ndarray, seconds: np.ndarray) -> FitTerm:
    # Relative least squares: minimise sum(((pred - y) / y)^2), so short steps count as much as long ones.
    x = np.column_stack([np.ones_like(seconds), tokens, kv])
    coef = nonnegative_least_squares(x / seconds[:, None], np.ones_like(seconds))
    rel = np.abs(x @ coef - seconds) / seconds
    return FitTerm(kind, len(seconds), dict(zip(("c_fixed", "c_tok", "c_kv"), map(float, coef))),
                   float(rel.mean()), float(rel.max()))


def _fit_constant(kind: str, seconds: np.ndarray) -> FitTerm:
    value = float(np.mean(seconds))
    rel = np.abs(value - seconds) / seconds
    return FitTerm(kind, len(seconds), {"seconds": value}, float(rel.mean()), float(rel.max()))


def fit_cost_model(profile: dict[str, np.ndarray], name: str, source: str = "") -> tuple[CostModel, list[FitTerm]]:
    """Fit target, per-proposer draft and overhead costs from profile columns (see `read_profile`)."""
    kinds = profile["step_kind"]
    terms: list[FitTerm] = []
    target_rows = np.isin(kinds, TARGET_KINDS)
    if not target_rows.any():
        raise SpecscopeError(
            f"{source or 'profile'}: no target rows (step_kind one of {', '.join(TARGET_KINDS)}); "
            "the target step time cannot be fitted"
        )
    sel = target_rows
    target_term = _fit_linear("target", profile["num_batched_tokens"][sel], profile["num_kv_tokens"][sel],
                              profile["seconds"][sel])
    terms.append(target_term)
    drafts: dict[str, DraftCost] = {}
    for kind in sorted({k for k in kinds if k.startswith(DRAFT_PREFIX)}):
        sel = kinds == kind
        term = _fit_linear(kind, profile["num_draft_tokens"][sel], profile["num_kv_tokens"][sel],
                           profile["seconds"][sel])
        terms.append(term)
        drafts[kind[len(DRAFT_PREFIX):]] = LinearCost(**term.coefficients)
    overhead = 0.0
    for kind in CONSTANT_KINDS:
        sel = kinds == kind
        if sel.any():
            term = _fit_constant(kind, profile["seconds"][sel])
            terms.append(term)
            overhead += term.coefficients["seconds"]
    model = CostModel(
        name=name,
        target=LinearCost(**target_term.coefficients),
        overhead=overhead,
        drafts=drafts,
        description=f"fitted by specscope fit-cost from {source}" if source else "fitted by specscope fit-cost",
        provenance={
            "source": "specscope fit-cost (relative least squares, non-negative coefficients)",
            "profile": source,
            "rows": int(len(kinds)),
            "fitted_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "mean_relative_error": {t.kind: round(t.mean_relative_error, 6) for t in terms},
        },
    )
    return model, terms
