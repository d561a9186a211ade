"""One sweep at a time per study folder: `DIR/sweep/lock`.

A sweep holds an exclusive `flock` on `sweep/lock` (and writes its pid into it) from before it looks at what
is done until its report is written. A second sweep into the same folder finds the lock held and stops at
once with one line naming the holder's pid (exit 2), before it touches anything — so two sweeps never clear
each other's temporary cells or interleave their stamps. The kernel drops the lock when its process ends,
however it ends (Ctrl-C, SIGKILL, a crash): a lock file left by a dead process is simply taken over. The
file itself stays (removing a locked file races with the next sweep opening it); it is emptied on release.

POSIX only (`fcntl`), as the rest of specscope's study tooling.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from specscope.errors import SpecscopeError
from specscope.formats.layout import StudyFolder

LOCK_FILE = "lock"


def lock_path(root: Path) -> Path:
    return StudyFolder(root).state / LOCK_FILE


@contextlib.contextmanager
def study_lock(root: Path) -> Iterator[Path]:
    """Hold the study folder `root` for this process; a one-line SpecscopeError if another process holds it."""
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as err:
        raise SpecscopeError(f"{path}: cannot open the study's lock file ({err.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(fd)
        os.close(fd)
        who = f"pid {holder}" if holder else "another process"
        raise SpecscopeError(f"{root}: another sweep ({who}) is writing this study folder; wait for it to finish "
                             "(or stop it), then run this again") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock


def holder_pid(root: Path) -> int | None:
    """The pid written in `root`'s lock file, or None (no file, empty: no sweep holds it since it was released)."""
    try:
        return _parse(lock_path(root).read_bytes())
    except OSError:
        return None


def _holder(fd: int) -> int | None:
    """The pid in an open lock file (the holder writes it right after taking the lock)."""
    import time

    for _ in range(20):  # the holder may be between taking the lock and writing its pid
        pid = _parse(os.pread(fd, 64, 0))
        if pid is not None:
            return pid
        time.sleep(0.01)
    return None


def _parse(data: bytes) -> int | None:
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
