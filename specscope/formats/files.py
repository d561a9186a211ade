"""File input and output shared by the commands.

Atomic output: a result file is either complete or absent, never half-written. Write to a temporary
file in the destination folder, fsync, then `os.replace` it over the target.
`check_output_file`: a command's result-file option that names a folder fails before any work.
Input: `read_jsonl_objects`, the one JSON Lines reader, with one-line errors naming file and line.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; on success it replaces `path`.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if "b" in mode:
            encoding = None
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_output_file(path: str | os.PathLike, example: str, option: str = "-o") -> None:
    """Raise a one-line SpecscopeError if the result file `path` is an existing folder (`example`: a file name)."""
    from specscope.errors import SpecscopeError

    if Path(path).is_dir():
        raise SpecscopeError(f"{option} {path}: is a folder; pass a file path such as {Path(path) / example}")


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_jsonl_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file (a UTF-8 BOM is allowed).

    A line that is not JSON, or not a JSON object, raises SpecscopeError naming `path:line`.
    """
    from specscope.errors import SpecscopeError

    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise SpecscopeError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno}); "
                                     "fix or re-create the file") from None
            if not isinstance(obj, dict):
                raise SpecscopeError(f"{path}:{lineno}: expected a JSON object with named fields, "
                                     f"found {type(obj).__name__}")
            yield lineno, obj
