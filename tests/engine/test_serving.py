"""Requests joining a running engine (`Engine.start` / `submit` / `cancel`, what `specscope serve` drives): greedy
outputs equal `generate`'s whatever the arrival order, a cancelled request frees its slot at once."""

import pytest

from specscope.engine.engine import Engine
from specscope.engine.proposers import build_proposer
from specscope.engine.scheduler import Request
from specscope.settings import RunSettings

from sd_helpers import MAX_NEW, repetitive_requests, run


def serving_engine(model, method="none", k=0, batch_size=4, max_len=256):
    settings = RunSettings.build(method=method, k=k, batch_size=batch_size, max_new_tokens=MAX_NEW)
    engine = Engine(model, build_proposer(method, settings, target=model), settings, stop_token_ids=(2,))
    engine.start(max_len)
    return engine


def drain(engine, finished, limit=10_000):
    for _ in range(limit):
        if engine.idle:
            return
        engine.step()
        finished.update({s.request.id: s for s in engine.scheduler.take_finished()})
    raise AssertionError("the engine did not finish")


@pytest.mark.parametrize("method,k", [("none", 0), ("ngram", 3)])
def test_requests_joining_a_running_batch_decode_as_generate(tiny_model, method, k):
    requests = repetitive_requests(10)
    expected, _ = run(tiny_model, requests, method, k, batch_size=4)
    engine = serving_engine(tiny_model, method, k)
    finished = {}
    for i, request in enumerate(requests):  # one new request every other step: they join mid-flight
        engine.submit(request)
        for _ in range(i % 3):
            engine.step()
            finished.update({s.request.id: s for s in engine.scheduler.take_finished()})
    drain(engine, finished)
    assert set(finished) == set(expected)
    for rid, seq in finished.items():
        assert seq.output.tolist() == expected[rid].output.tolist(), rid
        assert seq.finish_reason in ("stop", "length")
    assert len(engine.steps) > 0 and engine.idle


def test_cancel_frees_the_slot_and_keeps_the_output_so_far(tiny_model):
    requests = repetitive_requests(3)
    engine = serving_engine(tiny_model, batch_size=2)
    for request in requests:
        engine.submit(request)
    engine.step()
    engine.step()
    running = [s.request.id for s in engine.scheduler.running]
    assert len(running) == 2 and requests[2].id not in running  # the third waits for a slot
    assert engine.cancel(running[0])
    gone = engine.scheduler.take_finished()
    assert [s.request.id for s in gone] == [running[0]] and gone[0].finish_reason == "cancelled"
    assert gone[0].num_output == 2  # prefill token + one decode step
    engine.step()  # the freed slot takes the queued request
    assert requests[2].id in [s.request.id for s in engine.scheduler.running]
    assert engine.cancel(requests[2].id) and not engine.cancel("nobody")


def test_cancel_a_queued_request(tiny_model):
    engine = serving_engine(tiny_model, batch_size=1)
    a, b = repetitive_requests(2)
    engine.submit(a)
    engine.submit(b)
    assert engine.cancel(b.id)
    seq = engine.scheduler.take_finished()[0]
    assert seq.request.id == b.id and seq.finish_reason == "cancelled" and seq.num_output == 0
    finished = {}
    drain(engine, finished)
    assert list(finished) == [a.id]


def test_a_request_longer_than_the_served_context_fails_alone(tiny_model):
    engine = serving_engine(tiny_model, method="ngram", k=3, max_len=64)  # 64 - (k + 1) = 60 positions
    fits = Request("fits", [5, 6, 7], max_new_tokens=10)
    too_long = Request("too-long", list(range(3, 60)), max_new_tokens=10)
    engine.submit(fits)
    engine.submit(too_long)
    finished = {}
    drain(engine, finished)
    assert finished["too-long"].error and "60 tokens" in finished["too-long"].error
    assert finished["fits"].error is None and finished["fits"].num_output == 10
