"""The engine: greedy SD equals plain greedy decoding, continuous batching, stops, per-request errors, seeding."""

import pytest

from specscope.errors import SpecscopeError
from specscope.settings import RunSettings
from specscope.engine.scheduler import Request

from sd_helpers import MAX_NEW, repetitive_requests, run


@pytest.fixture(scope="module")
def requests():
    return repetitive_requests()


@pytest.fixture(scope="module")
def plain(tiny_model, requests):
    return run(tiny_model, requests)[0]


@pytest.mark.parametrize("method,draft", [("ngram", None), ("draft", "self:2")])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_sd_equals_plain_decoding(tiny_model, requests, plain, method, draft, k):
    accepted = 0
    for batch_size, num in ((1, 4), (4, 16), (16, 16)):  # batch size 1 on fewer prompts, to keep it fast
        out, engine = run(tiny_model, requests[:num], method, k, batch_size, draft)
        for rid in out:
            seq = plain[rid]
            assert out[rid].output.tolist() == seq.output.tolist(), (method, k, batch_size, rid)
            assert len(out[rid].proposed) == len(out[rid].accepted) == len(out[rid].output) - 1 - sum(out[rid].accepted)
        accepted += sum(s.committed - s.num_seqs for s in engine.steps if s.num_prefill == 0)
        assert all(0 <= a <= p <= k for s in out.values() for p, a in zip(s.proposed, s.accepted))
    assert accepted > 0  # the repetitive prompts make some drafts succeed


def test_plain_outputs_run_to_max_new_tokens(plain):
    assert all(s.num_output == MAX_NEW or s.output[-1] == 2 for s in plain.values())
    assert all(s.proposed == [0] * (s.num_output - 1) for s in plain.values())


def test_continuous_batching_refills_slots(tiny_model, requests):
    _, engine = run(tiny_model, requests, "ngram", 3, batch_size=4)
    assert max(s.num_seqs for s in engine.steps) == 4
    mixed = [s for s in engine.steps if 0 < s.num_prefill < s.num_seqs]
    assert mixed, "a prefill should share a step with running decodes"
    assert sum(s.num_prefill for s in engine.steps) == len(requests)


def test_stop_token_clips_the_step(tiny_model, requests, plain):
    # Pick a token that plain decoding emits mid-output and make it a stop token.
    seq = plain["r0"]
    stop = int(seq.output[5])
    first = seq.output.tolist().index(stop)
    out, _ = run(tiny_model, requests[:1], "ngram", 5, 1, stop=(stop,))
    assert out["r0"].output.tolist() == seq.output[: first + 1].tolist()
    assert out["r0"].finish_reason == "stop"
    out, _ = run(tiny_model, requests[:1], "ngram", 5, 1, max_new=7)
    assert out["r0"].output.tolist() == seq.output[:7].tolist() and out["r0"].finish_reason == "length"


def test_over_long_prompt_fails_alone(tiny_model, requests, plain):
    too_long = Request("long", [5] * (tiny_model.config.max_position - 3))
    out, _ = run(tiny_model, [requests[0], too_long, requests[1]], "ngram", 3, 2)
    assert out["long"].error and "exceeds the model's context" in out["long"].error
    assert out["r0"].output.tolist() == plain["r0"].output.tolist()
    assert out["r1"].output.tolist() == plain["r1"].output.tolist()


@pytest.mark.parametrize("method,draft", [("none", None), ("ngram", None), ("draft", "self:2")])
def test_sampling_is_seeded(tiny_model, requests, method, draft):
    kw = dict(temperature=0.8, top_p=0.95, max_new=12)
    a, _ = run(tiny_model, requests[:4], method, 3, 4, draft, seed=7, **kw)
    b, _ = run(tiny_model, requests[:4], method, 3, 4, draft, seed=7, **kw)
    c, _ = run(tiny_model, requests[:4], method, 3, 4, draft, seed=8, **kw)
    assert all(a[r].output.tolist() == b[r].output.tolist() for r in a)
    assert any(a[r].output.tolist() != c[r].output.tolist() for r in a)


def test_negative_k_is_rejected():
    with pytest.raises(SpecscopeError, match="--k -1: must be an integer between 0 and"):
        RunSettings.build(method="ngram", k=-1).check()


def test_request_records_carry_time_to_first_token(tiny_model, requests):
    from specscope.study.engine_backend import request_record

    out, _ = run(tiny_model, requests[:6], "ngram", 3, batch_size=2)
    for seq in out.values():
        record = request_record(seq)
        assert 0 < record["ttft_s"] <= record["latency_s"]  # the prefill's token comes first, the last token last
        assert seq.start_time < seq.first_token_time <= seq.end_time
    late = max(out.values(), key=lambda s: s.start_time)  # admitted when a slot freed: timed from its admission
    assert late.start_time > min(s.end_time for s in out.values() if s is not late) - 1e-9
