"""Step clock: phases add up to the step's wall time."""

import time

from specscope.engine.timing import PHASES, StepClock, StepRecord, time_breakdown


def test_laps_and_overhead_add_up():
    clock = StepClock("cpu")
    t0 = time.perf_counter()
    clock.start()
    time.sleep(0.01)
    clock.lap("overhead")
    time.sleep(0.02)
    clock.lap("draft")
    time.sleep(0.01)
    clock.lap("verify")
    clock.lap("sample")
    time.sleep(0.005)
    seconds = clock.stop()
    total = time.perf_counter() - t0
    assert set(seconds) == set(PHASES)
    assert seconds["draft"] >= 0.02 and seconds["verify"] >= 0.01
    assert seconds["overhead"] >= 0.015  # both the explicit lap and the tail after the last lap
    assert abs(sum(seconds.values()) - total) < 0.005


def test_time_breakdown_sums_phases():
    steps = [StepRecord(1, 2, 3, 4, 1, 0, 1, 10, 0, 0, 1), StepRecord(1, 1, 1, 1, 2, 1, 8, 20, 3, 2, 4)]
    assert time_breakdown(steps) == {"draft": 2, "verify": 3, "sample": 4, "overhead": 5}
    assert steps[0].seconds == 10


def test_decode_throughput_leaves_out_steps_with_prompts():
    from specscope.study.engine_backend import step_summary

    steps = [StepRecord(0, 5, 0, 0, 2, 2, 400, 0, 0, 0, 2),  # the prompts' step: 5 s, not counted
             StepRecord(1, 2, 0, 1, 2, 0, 8, 400, 6, 4, 6), StepRecord(0, 1, 0, 0, 2, 0, 2, 406, 0, 0, 2)]
    assert step_summary(steps)["decode_throughput_tok_s"] == 8 / 5
    assert step_summary(steps[:1])["decode_throughput_tok_s"] is None
