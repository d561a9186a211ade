"""How busy the machine was while a cell ran: the `contention` field of its summary.

    probe = ContentionProbe(threads=2)   # before the run
    ...                                  # the run
    contention = probe.stop()            # after it: a dict for summary.json

A timing measured while other processes compete for the CPU is slower than the engine is: one run
on a shared 2-core machine took 15x longer than on the quiet one, with nothing in its summary to
say so. The probe reads, at the start and the end of the run:

- `others_cpu`: the share of the machine's CPU time (all cores) used by OTHER processes during the
  run: busy time from /proc/stat minus this process's own CPU time, over wall time x cores;
- `steal`: the share of CPU time the hypervisor gave to other guests (/proc/stat steal);
- `own_cpu`: this process's CPU seconds per wall second (up to `threads` when it computed all along);
- `load_avg`: the 1-minute load average at the end, with `cpus` and `threads` to read it against.

`busy` is true when others used more than `BUSY_OTHERS` of the machine (the run's threads could not
all have a core of their own) or steal exceeded `BUSY_STEAL`. Where /proc is missing (not Linux) only
the load average is known: `busy` is then judged from it. No torch here.
"""

from __future__ import annotations

import os
import time

BUSY_OTHERS = 0.25  # others used more than a quarter of the machine's CPU time
BUSY_STEAL = 0.05
BUSY_LOAD_MARGIN = 0.5  # without /proc: load average above threads + this counts as busy


def _cpu_times() -> tuple[float, float] | None:
    """(busy, steal) seconds of all CPUs since boot from /proc/stat, or None where unreadable."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    steal = ticks[7] if len(ticks) > 7 else 0
    busy = sum(ticks[:8]) - idle - steal
    return busy / hz, steal / hz


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ContentionProbe:
    """Reads the machine's CPU counters now; `stop()` turns the difference into the `contention` dict."""

    def __init__(self, threads: int | None = None):
        self.cpus = cpu_count()
        self.threads = max(1, min(threads or self.cpus, self.cpus))
        self._wall = time.perf_counter()
        self._own = time.process_time()
        self._cpu = _cpu_times()

    def stop(self) -> dict:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        own = time.process_time() - self._own
        load = _load_average()
        out = {"cpus": self.cpus, "threads": self.threads, "own_cpu": round(own / wall, 3),
               "load_avg": None if load is None else round(load, 2)}
        now = _cpu_times()
        if self._cpu is not None and now is not None:
            capacity = wall * self.cpus
            others = max(0.0, (now[0] - self._cpu[0]) - own) / capacity
            steal = max(0.0, now[1] - self._cpu[1]) / capacity
            out.update(others_cpu=round(min(others, 1.0), 3), steal=round(min(steal, 1.0), 3))
            out["busy"] = bool(others > BUSY_OTHERS or steal > BUSY_STEAL)
        else:
            out.update(others_cpu=None, steal=None)
            out["busy"] = bool(load is not None and load > self.threads + BUSY_LOAD_MARGIN)
        return out


def describe(contention: dict | None) -> str:
    """'others used 61% of the CPUs, load 5.2 on 2 CPUs' (for warnings), '' when unknown."""
    if not isinstance(contention, dict):
        return ""
    parts = []
    if contention.get("others_cpu") is not None:
        parts.append(f"other processes used {contention['others_cpu']:.0%} of the CPU time")
    if contention.get("steal"):
        parts.append(f"steal {contention['steal']:.0%}")
    if contention.get("load_avg") is not None:
        parts.append(f"load average {contention['load_avg']:.1f} on {contention.get('cpus', '?')} CPUs")
    return ", ".join(parts)
