"""The contention probe: how busy the machine was while a cell ran (summary.json `contention`)."""

import pytest

from specscope.study import contention
from specscope.study.contention import ContentionProbe, describe


class FakeClock:
    """Wall time, this process's CPU time and the machine's /proc/stat counters, advanced by the test."""

    def __init__(self):
        self.wall = self.own = self.busy = self.steal = 0.0

    def run(self, wall, own, others, steal=0.0):
        self.wall += wall
        self.own += own
        self.busy += own + others
        self.steal += steal


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(contention.time, "perf_counter", lambda: fake.wall)
    monkeypatch.setattr(contention.time, "process_time", lambda: fake.own)
    monkeypatch.setattr(contention, "_cpu_times", lambda: (fake.busy, fake.steal))
    monkeypatch.setattr(contention, "_load_average", lambda: 3.5)
    monkeypatch.setattr(contention, "cpu_count", lambda: 2)
    return fake


def test_a_quiet_machine_is_not_busy(clock):
    probe = ContentionProbe(threads=2)
    clock.run(wall=10.0, own=19.0, others=0.4)
    out = probe.stop()
    assert out == {"cpus": 2, "threads": 2, "own_cpu": 1.9, "load_avg": 3.5, "others_cpu": 0.02, "steal": 0.0,
                   "busy": False}


def test_others_taking_a_third_of_the_machine_make_it_busy(clock):
    probe = ContentionProbe(threads=2)
    clock.run(wall=10.0, own=12.0, others=7.0)  # others used 7 of 20 CPU-seconds
    out = probe.stop()
    assert out["others_cpu"] == 0.35 and out["busy"] is True
    assert "other processes used 35% of the CPU time" in describe(out)


def test_steal_makes_it_busy_and_without_proc_the_load_average_decides(clock, monkeypatch):
    probe = ContentionProbe(threads=1)
    clock.run(wall=10.0, own=9.0, others=0.0, steal=2.0)
    assert probe.stop()["busy"] is True
    monkeypatch.setattr(contention, "_cpu_times", lambda: None)
    probe = ContentionProbe(threads=1)
    clock.run(wall=1.0, own=1.0, others=0.0)
    out = probe.stop()
    assert out["others_cpu"] is None and out["busy"] is True  # load 3.5 > 1 thread + 0.5


def test_the_real_probe_reads_this_machine():
    out = ContentionProbe().stop()
    assert out["cpus"] >= 1 and isinstance(out["busy"], bool)
    assert describe(None) == ""
