"""Peak resident memory (RSS) of one cell when many cells run in one process.

The process-wide peak (`getrusage`) only grows, so after the first big cell every later cell
would report it. On Linux the peak can be reset: writing "5" to /proc/self/clear_refs sets VmHWM
back to the current RSS. Before each cell the sweep frees what it can (garbage collection and
`malloc_trim`), resets the peak, and after the cell reads VmHWM: the cell's peak, which includes
the already loaded target model and libraries, exactly as a separate `specscope run` process would
after loading them. Elsewhere `reset_peak()` returns False and the process-wide peak is used.
"""

from __future__ import annotations

import ctypes
import gc
import re
import resource
import sys
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak() -> bool:
    """Free what can be freed and reset this process's peak RSS; False where that is not possible."""
    _release_free_memory()
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """This process's peak RSS since the last reset (VmHWM), in MiB; None where unavailable."""
    try:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", STATUS.read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def process_peak_rss_mb() -> float:
    """This process's peak RSS since it started (getrusage), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
