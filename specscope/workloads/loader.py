"""Loading a workload's prompts from one of three sources.

- `None` / `"bundled"`: the offline samples shipped in `specscope/workloads/data/<name>.jsonl`;
- `"hf"`: the real dataset the study used (`hf.py`), through the `datasets` library;
- a path: the user's own JSONL / JSON / CSV / TSV / Parquet file, with `prompt_field` naming the
  column of the workload's main field and `field_map` any others.

Every record goes through the workload's template; then `num_prompts` / `seed` pick a reproducible
subset (`sampling.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from specscope.errors import SpecscopeError
from specscope.workloads.fields import build_field_map, extract_record
from specscope.workloads.hf import load_hf_rows
from specscope.workloads.local import read_rows
from specscope.workloads.prompt import Prompt
from specscope.workloads.registry import Workload, get_workload
from specscope.workloads.sampling import sample_indices

BUNDLED = "bundled"
HF = "hf"


def load_prompts(
    workload: str,
    source: Optional[str | os.PathLike] = None,
    prompt_field: Optional[str] = None,
    field_map: Optional[dict[str, str]] = None,
    num_prompts: Optional[int] = None,
    seed: int = 0,
) -> list[Prompt]:
    """The prompts of `workload` from `source`, optionally a seeded subset of `num_prompts`.

    Raises `SpecscopeError` (one line, with file and line where relevant) for an unknown workload,
    a missing or malformed file, a missing or empty field, or an unreachable dataset.
    """
    wl = get_workload(workload)
    mapping = build_field_map(wl, prompt_field, field_map)
    records = load_records(wl, source, mapping)
    label = source_label(wl, source)
    return [
        _prompt(wl, records[i], label)
        for i in sample_indices(len(records), num_prompts, seed)
    ]


def source_label(wl: Workload, source) -> str:
    """How a source is named in results: `bundled`, `hf:<repo>` or the file path."""
    if source is None or str(source) == BUNDLED:
        return BUNDLED
    if str(source) == HF:
        return f"{HF}:{wl.hf.repo}"
    return str(source)


def load_records(wl: Workload, source, mapping: dict[str, str]) -> list[tuple[str, dict]]:
    """`[(id, record), ...]` for every usable record of the source, ids unique."""
    if source is None or str(source) in (BUNDLED, HF):
        if mapping:
            raise SpecscopeError("--prompt-field and --field apply to your own files only; pass --source PATH")
        if str(source) == HF:
            return _unique(_from_hf(wl), rename=True)
        return _unique(_from_file(wl, wl.bundled_path, {}))
    path = Path(source).expanduser()
    if not path.exists():
        raise SpecscopeError(f"--source '{source}' is neither 'bundled', 'hf' nor an existing file")
    return _unique(_from_file(wl, path, mapping))


def _from_file(wl: Workload, path: Path, mapping: dict[str, str]) -> list[tuple[str, str, dict]]:
    out = []
    for index, (where, row) in enumerate(read_rows(path)):
        record_id = row.get("id")
        record_id = f"{wl.name}-{index:04d}" if record_id in (None, "") else str(record_id)
        out.append((where, record_id, extract_record(row, wl, mapping, where)))
    return out


def _from_hf(wl: Workload) -> list[tuple[str, str, dict]]:
    out = []
    for index, row in enumerate(load_hf_rows(wl.hf)):
        adapted = wl.hf.adapter(row, index)
        if adapted is not None:
            where = f"{wl.hf.label} row {index}"
            out.append((where, adapted[0], extract_record(adapted[1], wl, {}, where)))
    if not out:
        raise SpecscopeError(f"Hugging Face dataset {wl.hf.label} gave no usable {wl.name} prompts")
    return out


def _unique(located: list[tuple[str, str, dict]], rename: bool = False) -> list[tuple[str, dict]]:
    """Drop the locations after making sure ids are unique (results are keyed by id).

    A duplicate in the user's file is an error; in a public dataset (`rename`) it becomes `id#2`, ...
    """
    seen: dict[str, str] = {}
    out = []
    for where, record_id, record in located:
        if record_id in seen:
            if not rename:
                first = seen[record_id]
                raise SpecscopeError(f"{where}: duplicate id '{record_id}' (first at {first}); ids must be unique")
            record_id = next(f"{record_id}#{n}" for n in range(2, len(located) + 2) if f"{record_id}#{n}" not in seen)
        seen[record_id] = where
        out.append((record_id, record))
    return out


def _prompt(wl: Workload, located: tuple[str, dict], label: str) -> Prompt:
    record_id, record = located
    return Prompt(
        id=record_id,
        workload=wl.name,
        messages=tuple(wl.template(record)),
        max_new_tokens=wl.max_new_tokens,
        is_reasoning=wl.is_reasoning,
        source=label,
    )
