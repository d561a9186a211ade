"""The local probe: measure this machine's memory bandwidth and matmul FLOP rate, as a hardware spec.

    from specscope.study.probe import probe_cpu
    spec = probe_cpu(threads=None)       # -> costs.hardware.HardwareSpec, kind "cpu", name "local-cpu"

What it measures (torch, on the CPU, with the threads torch uses, or `threads`):
- copy bandwidth: `dst.copy_(src)` of two float32 buffers far larger than any cache (256 MiB each);
  bytes moved = read + write = 2 x the buffer; with all threads and with one (the larger counts: one
  core can often stream the whole socket);
- matmul FLOP rate: `torch.mm` of two float32 square matrices (1024 x 1024, 2 n^3 FLOPs), with all
  threads and with one thread times the thread count (the larger counts). This is the precision the
  built-in engine computes in on the CPU (fp32).
Each figure is the median of 15 repetitions after a warm-up, as `specscope profile` times steps: on
a machine shared with other work both then see the same share of it (a best-of probe would catch
the quiet moments a profile's medians do not). The one-thread figures guard against the collapse of
a multi-threaded kernel when another process holds a core (its threads wait for each other). It
takes a few seconds; the efficiencies in `specscope/data/efficiency.toml` say how much of these
rates a real step reaches. `specscope probe -o my-cpu.toml` writes the result; `specscope cost-model
--hardware my-cpu.toml` (or `--hardware local`, which probes on the spot) prices models with it.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import time
from typing import Callable

from specscope.costs.hardware import HardwareSpec
from specscope.errors import SpecscopeError

COPY_BYTES = 256 * 2**20  # per buffer: far above the last-level cache of any CPU this runs on
MATMUL_N = 1024
REPS = 15


def median_seconds(fn: Callable[[], None], reps: int) -> float:
    """The median wall time of `fn()` over `reps` calls, after one untimed warm-up call (as `specscope profile`
    times its steps, so that the two see a busy machine alike)."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_bandwidth(nbytes: int = COPY_BYTES, reps: int = REPS) -> float:
    """Bytes per second moved by a large float32 copy (read + write counted)."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    seconds = median_seconds(lambda: dst.copy_(src), reps)
    return 2 * src.nbytes / seconds


def matmul_flops(n: int = MATMUL_N, reps: int = REPS) -> float:
    """float32 FLOPs per second of an n x n x n matmul (2 n^3 FLOPs)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)
    seconds = median_seconds(lambda: torch.mm(a, b, out=out), reps)
    return 2.0 * n**3 / seconds


def total_memory_bytes() -> float:
    """Physical memory of this machine (bytes), from the OS."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        raise SpecscopeError("cannot read this machine's memory size from the OS; write a hardware TOML by hand "
                             "(see specscope/data/hardware/h100-sxm.toml)") from None


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe_cpu(threads: int | None = None, name: str = "local-cpu", copy_bytes: int = COPY_BYTES,
              matmul_n: int = MATMUL_N, reps: int = REPS) -> HardwareSpec:
    """Measure this CPU (see the module docstring) and return it as a hardware spec."""
    import torch

    if threads is not None:
        if threads < 1:
            raise SpecscopeError(f"--threads {threads}: give a number of threads >= 1")
        torch.set_num_threads(threads)
    used = torch.get_num_threads()
    bandwidth, flops = copy_bandwidth(copy_bytes, reps), matmul_flops(matmul_n, reps)
    if used > 1:
        torch.set_num_threads(1)
        try:
            bandwidth_1, flops_1 = copy_bandwidth(copy_bytes, reps), matmul_flops(matmul_n, reps)
        finally:
            torch.set_num_threads(used)
    else:
        bandwidth_1, flops_1 = bandwidth, flops
    return HardwareSpec(
        name=name,
        description=f"{cpu_name()}, {used} threads (measured by specscope probe)",
        kind="cpu",
        memory_bytes=total_memory_bytes(),
        bandwidth=max(bandwidth, bandwidth_1),
        flops={"fp32": max(flops, flops_1 * used)},
        provenance={
            "source": "specscope probe: torch copy bandwidth (read + write, median of "
                      f"{reps} x {copy_bytes // 2**20} MiB) and float32 torch.mm FLOP rate (median of {reps}, "
                      f"n = {matmul_n}), the larger of all threads and one thread (x threads)",
            "measured_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "threads": used,
            "copy_gbs": {"all threads": round(bandwidth / 1e9, 2), "one thread": round(bandwidth_1 / 1e9, 2)},
            "fp32_gflops": {"all threads": round(flops / 1e9, 2), "one thread": round(flops_1 / 1e9, 2)},
            "cpu": cpu_name(),
            "machine": f"{platform.machine()} {platform.system()}",
            "torch": torch.__version__,
            "memory": "physical memory reported by the OS",
        },
    )
