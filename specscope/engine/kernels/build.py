"""Compile (once) and load specscope's CPU kernels (`cpu_kernels.cpp`) as `torch.ops.specscope.*`.

The extension is built with torch's own C++ extension machinery (needs a C++ compiler and ninja)
into `~/.cache/specscope/kernels/<hash>/`, keyed by the source text, the torch version and the
Python version, so the ~30-60 s compile happens once per machine; later loads take milliseconds.
Concurrent builds are serialised by an advisory lock (`flock`) on `build.lock` in the build folder,
which the kernel releases when its holder dies: a build killed half-way leaves torch's own `lock` file
behind, which would make every later load wait forever, so whoever holds `build.lock` removes it.

`cpu_ops()` returns the loaded op namespace, or raises `KernelsUnavailable` with a one-line
reason (not an x86-64 CPU with AVX2, no compiler, build failure); callers fall back to float32.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import sys
from pathlib import Path

_SOURCE = Path(__file__).with_name("cpu_kernels.cpp")
_FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp"]


class KernelsUnavailable(RuntimeError):
    """The CPU kernels cannot be used on this machine (the message says why)."""


def _cache_dir() -> Path:
    base = os.environ.get("SPECSCOPE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specscope"
    )
    return Path(base) / "kernels"


def build_folder() -> Path:
    """Where this source, with these flags, this torch and this Python, is built (and its lock files live)."""
    import torch

    source = _SOURCE.read_text()
    key = hashlib.sha1(f"{source}|{_FLAGS}|{torch.__version__}|{sys.version_info[:2]}".encode()).hexdigest()[:12]
    return _cache_dir() / key


_loaded: dict = {}  # "ops" or "error", so a failed build is not retried in the same process


def _build():
    import torch

    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise KernelsUnavailable(f"the CPU kernels need x86-64 (this is {platform.machine()})")
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        raise KernelsUnavailable("the CPU kernels need a CPU with AVX2/FMA/F16C")
    build_dir = build_folder()
    name = f"specscope_cpu_{build_dir.name}"
    try:
        from torch.utils.cpp_extension import load

        build_dir.mkdir(parents=True, exist_ok=True)
        with open(build_dir / "build.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released on close, or by the kernel if this process dies
            (build_dir / "lock").unlink(missing_ok=True)  # torch's baton: only a dead build can have left it
            for attempt in range(2):
                try:  # compiles on the first call; afterwards ninja finds the library up to date: just a load
                    load(name=name, sources=[str(_SOURCE)], extra_cflags=_FLAGS, build_directory=str(build_dir),
                         is_python_module=False, verbose=False)
                    break
                except FileNotFoundError:  # our baton removed by a process that does not take build.lock
                    if attempt:
                        raise
    except Exception as err:  # compiler missing, headers missing, ninja missing, ...
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise KernelsUnavailable(f"could not build the CPU kernels ({reason})") from None
    return torch.ops.specscope


def cpu_ops():
    """`torch.ops.specscope` (ggml_linear, rms_norm, silu_mul, rope_attention); builds it on first use."""
    if "ops" not in _loaded and "error" not in _loaded:
        try:
            _loaded["ops"] = _build()
        except KernelsUnavailable as err:
            _loaded["error"] = err
    if "error" in _loaded:
        raise _loaded["error"]
    return _loaded["ops"]


def cpu_kernels_available() -> bool:
    """True when the kernels load (building them if needed)."""
    try:
        cpu_ops()
        return True
    except KernelsUnavailable:
        return False
