"""Reading prompt rows from a file: JSONL, JSON, CSV/TSV or Parquet.

`read_rows(path)` returns `[(where, row), ...]`, where `where` is `file:line` (or `file row N` for
Parquet and JSON arrays) so that later checks can point at the offending record. Bad files —
unreadable, malformed, empty — raise one clear `SpecscopeError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from specscope.errors import SpecscopeError
from specscope.formats.files import parse_json, read_csv_records, read_jsonl_objects, read_text

PARQUET_INSTALL_HINT = "pip install 'specscope[parquet]'"
FORMATS = ".jsonl, .ndjson, .json, .csv, .tsv, .parquet"


def read_rows(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """All records of a prompt file, each with its location; at least one, or an error."""
    path = Path(path)
    if not path.is_file():
        raise SpecscopeError(f"prompt file '{path}' does not exist; pass an existing {FORMATS} file")
    suffix = path.suffix.lower()
    readers = {
        ".jsonl": _read_jsonl,
        ".ndjson": _read_jsonl,
        ".json": _read_json,
        ".csv": _read_csv,
        ".tsv": _read_csv,
        ".parquet": _read_parquet,
    }
    if suffix not in readers:
        raise SpecscopeError(f"prompt file '{path}' has an unknown format '{suffix}'; use one of {FORMATS}")
    rows = readers[suffix](path)
    if not rows:
        raise SpecscopeError(f"prompt file '{path}' has no records; add at least one")
    return rows


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise SpecscopeError(f"{where}: expected a JSON object with named fields, found {type(value).__name__}")
    return value


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    return [(f"{path}:{number}", obj) for number, obj in read_jsonl_objects(path, "prompt file")]


def _read_json(path: Path) -> list[tuple[str, dict]]:
    text = read_text(path, "prompt file")
    if not text.strip():
        return []
    value = parse_json(text, str(path), lines=True)
    if not isinstance(value, list):
        raise SpecscopeError(f"{path}: expected a JSON array of objects (or use JSONL, one object per line)")
    return [(f"{path} record {i}", _object(row, f"{path} record {i}")) for i, row in enumerate(value, start=1)]


def _read_csv(path: Path) -> list[tuple[str, dict]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    _, records = read_csv_records(path, "prompt file", delimiter, empty_ok=True)
    return [(f"{path}:{lineno}", row) for lineno, row in records]


def _read_parquet(path: Path) -> list[tuple[str, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SpecscopeError(f"reading Parquet needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}") from None
    try:
        table = pq.read_table(path)
    except Exception as err:
        reason = (str(err).splitlines() or ["unreadable"])[0]
        raise SpecscopeError(f"prompt file '{path}' is not a readable Parquet file ({reason})") from None
    return [(f"{path} row {i}", row) for i, row in enumerate(table.to_pylist(), start=1)]
