"""The bytes of every file specscope reads or writes: one reader for text inputs, one atomic writer.

Reading (`read_text`, and on top of it `read_jsonl_objects`, `read_json_object`, `read_toml`, `read_csv_records`):
every text input — traces, profiles, cost models, sweep configs, prompt files, a study folder's files — is
read here, so every reader treats it the same way: UTF-8 with or without a byte-order mark; at most
`MAX_INPUT_BYTES` (or the caller's limit); a folder, a missing file, UTF-16, Latin-1, binary bytes (NUL), JSON
nested past reason or an unterminated CSV quote is one `SpecscopeError` line naming the file, the line and
the column where there is one — never a traceback. What the values mean is each format's own validator.

Writing (`atomic_open`, `write_text_atomic`, `write_json_atomic`): a result file is either complete or absent,
never half-written: a temporary sibling is written, fsynced and renamed over the target. Only a regular
file (or nothing) is ever replaced: a folder, a device, a FIFO, a symbolic link to one of those, a
dangling link or a path through a regular file (`out.jsonl/x.csv`) is refused with one line, untouched;
a link to a regular file is written through (the link stays). On failure the temporary file and any
folder the writer created are removed. `check_output_file` / `check_output_folder` make the same checks
for a command's `-o` before any work.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import io
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

from specscope.errors import SpecscopeError, brief, shorten

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_INPUT_BYTES = 1 << 30  # 1 GiB: no text input of specscope's comes near it (a trace of 10^4 long requests is ~0.2 GiB)
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)  # a full or read-only disk

# ---------------------------------------------------------------------------------------------
# Reading


def read_text(path: str | os.PathLike, what: str = "file", limit: int = MAX_INPUT_BYTES) -> str:
    """The text of the file at `path` (UTF-8, a leading BOM dropped, line endings kept).

    `what` names the file in the errors ("trace file", "profile file", ...). One-line SpecscopeError for a
    missing file, a folder, an unreadable file, more than `limit` bytes, or bytes that are not UTF-8 text.
    """
    return decode_text(read_bytes(path, what, limit), path)


def read_bytes(path: str | os.PathLike, what: str = "file", limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of an input file, at most `limit` of them (the one-line errors of `read_text`)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SpecscopeError(f"{what} '{path}' does not exist") from None
    except NotADirectoryError:
        raise SpecscopeError(f"{what} '{path}' does not exist ({_blocking_ancestor(path)} is a file, not a folder)") from None
    except OSError as err:
        raise SpecscopeError(f"{what} '{path}': cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise SpecscopeError(f"{what} '{path}' is a folder; pass a file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as err:
        raise SpecscopeError(f"{what} '{path}': cannot read it ({err.strerror})") from None
    if len(data) > limit:
        raise SpecscopeError(f"{what} '{path}' is larger than {_size(limit)}, more than specscope reads from one "
                             "file; split it or check that it is the file you meant")
    return data


def decode_text(data: bytes, path) -> str:
    """UTF-8 bytes as text (a leading BOM dropped); one line naming `path:line` for anything else."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SpecscopeError(f"{path}: the file is UTF-16 text; save it as UTF-8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, column = _position(data, err.start)
        raise SpecscopeError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); "
                             "save the file as UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        line, column = _position(text, nul)
        raise SpecscopeError(f"{path}:{line}: a NUL byte at column {column}: a binary (or UTF-16) file, not UTF-8 text")
    return text


def text_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for every line of `text`, split at newlines only (a JSON string may hold U+2028)."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        yield lineno, line


def json_problem(err: json.JSONDecodeError) -> str:
    """`json`'s complaint as one phrase: 'Expecting value at column 3', 'Unterminated string starting at column 9'."""
    return f"{err.msg} column {err.colno}" if err.msg.endswith(" at") else f"{err.msg} at column {err.colno}"


def parse_json(text: str, where: str, lines: bool = False):
    """`json.loads(text)`, with a one-line error at `where` (`lines`: followed by `:line`); nesting past
    Python's recursion limit and integers longer than it converts are errors too."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        line = f":{err.lineno}" if lines else ""
        raise SpecscopeError(f"{where}{line}: not valid JSON ({json_problem(err)})") from None
    except RecursionError:
        raise SpecscopeError(f"{where}: not valid JSON here (nested too deeply)") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise SpecscopeError(f"{where}: not valid JSON here ({shorten(err)})") from None


def read_json_lines(path: str | os.PathLike, what: str = "file",
                    limit: int = MAX_INPUT_BYTES) -> Iterator[tuple[int, dict, str]]:
    """(line number, object, the line's text) for each non-blank line of a JSON Lines file.

    A line that is not JSON, or not a JSON object, is a SpecscopeError naming `path:line`.
    """
    text = read_text(path, what, limit)
    for lineno, line in text_lines(text):
        if not line.strip():
            continue
        obj = parse_json(line, f"{path}:{lineno}")
        if not isinstance(obj, dict):
            raise SpecscopeError(f"{path}:{lineno}: expected a JSON object, found {type(obj).__name__}")
        yield lineno, obj, line


def read_jsonl_objects(path: str | os.PathLike, what: str = "file",
                       limit: int = MAX_INPUT_BYTES) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file (see `read_json_lines`)."""
    for lineno, obj, _ in read_json_lines(path, what, limit):
        yield lineno, obj


def read_json_object(path: str | os.PathLike, what: str = "file", hint: str = "") -> dict:
    """A JSON file holding one object; `hint` ends the error messages (how to fix it)."""
    end = f"; {hint}" if hint else ""
    text = read_text(path, what)
    try:
        obj = parse_json(text, str(path), lines=True)
    except SpecscopeError as err:
        raise SpecscopeError(f"{err}{end}") from None
    if not isinstance(obj, dict):
        raise SpecscopeError(f"{path}: expected a JSON object, found {type(obj).__name__}{end}")
    return obj


def read_toml(path: str | os.PathLike, what: str = "file") -> dict:
    """A TOML file's tables (one-line errors, with TOML's own line and column)."""
    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        reason = (str(err).splitlines() or ["unreadable"])[0]
        raise SpecscopeError(f"{path}: not valid TOML ({reason})") from None
    except RecursionError:
        raise SpecscopeError(f"{path}: not valid TOML (nested too deeply)") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise SpecscopeError(f"{path}: not valid TOML ({shorten(err)})") from None


def read_csv_records(path: str | os.PathLike, what: str = "file", delimiter: str = ",", exact: bool = False,
                     empty_ok: bool = False) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line number, {column: value}), ...]) of a CSV file; blank lines are skipped (an empty file:
    ([], []) with `empty_ok`, else an error).

    One-line errors: no header, an empty or repeated column name, a row with more values than the header
    has columns (with `exact`: or fewer; otherwise missing values are ""), an unterminated quote, a value
    longer than the csv module takes. Values in messages are cut short (`brief`).
    """
    text = read_text(path, what)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    start = 1
    try:
        for values in reader:
            lineno, start = start, reader.line_num + 1
            if not values:
                continue
            if header is None:
                header = [v.strip() for v in values]
                _check_header(header, path, lineno)
                continue
            if len(values) > len(header) or (exact and len(values) < len(header)):
                more = "more" if len(values) > len(header) else "fewer"
                raise SpecscopeError(f"{path}:{lineno}: {more} values ({len(values)}) than the header has columns "
                                     f"({len(header)}: {shorten(delimiter.join(header), 120)})")
            rows.append((lineno, dict(zip(header, values + [""] * (len(header) - len(values))))))
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            raise SpecscopeError(f"{path}:{start}: a quote that never closes (the quoted value starting on this "
                                 "line runs to the end of the file)") from None
        raise SpecscopeError(f"{path}:{start}: malformed CSV ({shorten(err)})") from None
    if header is None:
        if empty_ok:
            return [], []
        raise SpecscopeError(f"{path}: the file is empty; expected a CSV header line")
    return header, rows


def _check_header(header: list[str], path, lineno: int) -> None:
    for i, name in enumerate(header):
        if not name:
            raise SpecscopeError(f"{path}:{lineno}: column {i + 1} of the header has no name")
        if name in header[:i]:
            raise SpecscopeError(f"{path}:{lineno}: column '{brief(name)[1:-1]}' appears twice in the header; "
                                 "keep one")


def _position(data, index: int) -> tuple[int, int]:
    """(line, column), both from 1, of `index` in `data` (bytes or str)."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, index) + 1, index - (data.rfind(newline, 0, index) + 1) + 1


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Writing


def check_output_file(path: str | os.PathLike, example: str, option: str = "-o") -> None:
    """A one-line SpecscopeError unless `path` can take a result file: nothing there yet, or a regular file
    (through a link), under folders (or places a folder can be made). `example`: a file name for the hint."""
    path = Path(path)
    if path.is_dir():
        raise SpecscopeError(f"{option} {path}: is a folder; pass a file path such as {path / example}")
    _writable_file(path, option)


def check_output_folder(path: str | os.PathLike, option: str = "-o", files=()) -> None:
    """A one-line SpecscopeError unless `path` is a folder or can be made one, and each of `files` inside it
    can be written (see `check_output_file`)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SpecscopeError(f"{option} {path}: exists and is not a folder; pass a folder path")
    if os.path.lexists(path) and not path.exists():
        raise SpecscopeError(f"{option} {path}: a symbolic link to nothing; pass a folder path")
    if not path.exists():
        _check_ancestors(path, option)
    for name in files:
        _writable_file(path / name, option)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; on success it replaces `path` (see the module docstring).

    On an exception the temporary file and the folders this call made are removed and `path` is untouched.
    """
    target = _writable_file(Path(path))
    made = _make_folders(target.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        _remove_folders(made)
        raise SpecscopeError(f"{path}: cannot write it ({err.strerror})") from None
    try:
        if "b" in mode:
            encoding = None
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        _writable_file(Path(path))  # again, just before the rename: nothing else appeared there meanwhile
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _remove_folders(made)
        if isinstance(err, OSError) and err.errno in _WRITE_ERRORS:
            raise SpecscopeError(f"{path}: cannot write it ({err.strerror})") from None
        raise


def _writable_file(path: Path, option: str | None = None) -> Path:
    """Where writing `path` lands (the target of a link to a regular file), or a one-line SpecscopeError."""
    name = f"{option} {path}" if option else str(path)
    if os.path.lexists(path):
        try:
            info = path.stat()
        except FileNotFoundError:
            raise SpecscopeError(f"{name}: a symbolic link to nothing ({os.readlink(path)}); pass a file path") from None
        except OSError as err:
            raise SpecscopeError(f"{name}: cannot write it ({err.strerror})") from None
        link = " (through a symbolic link)" if path.is_symlink() else ""
        if stat.S_ISDIR(info.st_mode):
            raise SpecscopeError(f"{name}: is a folder{link}; pass a file path")
        if not stat.S_ISREG(info.st_mode):
            raise SpecscopeError(f"{name}: is a device or other special file{link}, not a regular file; specscope "
                                 "writes results only to regular files")
        return path.resolve() if link else path
    _check_ancestors(path, option)
    return path


def _check_ancestors(path: Path, option: str | None) -> None:
    """Refuse a path whose nearest existing ancestor is not a folder (`out.jsonl/x.csv`, `/dev/null/x`)."""
    blocking = _blocking_ancestor(path)
    if blocking is not None:
        name = f"{option} {path}" if option else str(path)
        raise SpecscopeError(f"{name}: {blocking} is a file, not a folder; pass a path in a folder")


def _blocking_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` when it is not a folder (None when it is one)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return None if parent.is_dir() else parent
    return None


def _make_folders(folder: Path, path) -> list[Path]:
    """Make `folder` and its missing parents; returns those made, innermost last."""
    missing = []
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    made = []
    for candidate in reversed(missing):
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            _remove_folders(made)
            raise SpecscopeError(f"{path}: cannot make the folder {candidate} ({err.strerror})") from None
        made.append(candidate)
    return made


def _remove_folders(made: list[Path]) -> None:
    """Remove folders `_make_folders` made, innermost first, as long as they are empty."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            return


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
