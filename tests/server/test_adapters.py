"""SD acceptance from each engine's payload (fixtures written from the engines' docs: tests/server/fixtures/README.md),
normalised to one record; the /metrics scraper on each engine's counters."""

import json
from pathlib import Path

import httpx
import pytest

from specscope.server.adapters import PayloadError, read_acceptance
from specscope.server.client import exchange
from specscope.server.metrics import difference, parse_counters

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def test_vllm_summary_reads_the_documented_example():
    # vLLM docs, "Per-Request Acceptance Metrics": metrics.speculative_decoding's example values
    acc = read_acceptance(fixture("vllm_summary.json"), 54)
    assert acc.source == "metrics.speculative_decoding"
    assert (acc.steps, acc.drafted, acc.accepted, acc.k) == (43, 129, 10, 3)
    assert acc.histogram == [39, 1, 0, 3]
    assert acc.mean_acc_len == pytest.approx(1.2325581395348837)  # = 1 + 10 / 43, as vLLM reports it
    assert acc.acceptance_rate == pytest.approx(0.07751937984496124)
    assert acc.per_step_accepted is None  # summary: no arrays


def test_vllm_detailed_stream_folds_into_one_response_with_per_step_arrays():
    # streamed: metrics.speculative_decoding on the final usage chunk (stream_options.include_usage)
    sse = (FIXTURES / "vllm_detailed_stream.sse").read_bytes()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=sse,
                                                                   headers={"content-type": "text/event-stream"}))

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            return await exchange(client, "http://x/v1/chat/completions", {}, stream=True, timeout_s=10)

    import asyncio

    got = asyncio.run(go())
    assert got.error is None and got.text == "One two three four five six seven"
    assert got.token_ids == [11, 12, 13, 14, 15, 16, 17] and got.prompt_token_ids == [1, 2, 3]
    assert got.finish_reason == "length" and got.completion_tokens == 7
    assert len(got.chunk_times) == 4 and got.ttft_s == got.chunk_times[0]  # the role-only chunk carries no output
    acc = read_acceptance(got.response, got.completion_tokens)
    assert acc.per_step_accepted == [1, 2, 0] and acc.per_step_drafted == [2, 2, 2]
    assert acc.mean_acc_len == 2.0 and acc.k == 2


def test_sglang_openai_spec_tokens_details_recount_the_first_token():
    # sglext.spec_tokens_details: spec_accept_length = completion / verify_ct counts the prefill's token
    acc = read_acceptance(fixture("sglang_openai.json"), 41)
    assert acc.source == "sglext.spec_tokens_details"
    assert (acc.steps, acc.drafted, acc.accepted) == (16, 48, 24)
    assert acc.reported_mean_acc_len == 2.5625 and acc.mean_acc_len == 2.5
    assert acc.histogram == [4, 4, 4, 4]


def test_sglang_generate_meta_info_derives_accepted_from_the_output_length():
    # /generate meta_info: spec_verify_ct, spec_accept_length, completion_tokens only
    acc = read_acceptance(fixture("sglang_generate.json"))
    assert acc.source == "meta_info" and acc.steps == 10 and acc.accepted == 20  # 31 - 1 tokens in 10 steps
    assert acc.mean_acc_len == 3.0 and acc.reported_mean_acc_len == 3.1 and acc.drafted is None


def test_trtllm_avg_decoded_tokens_is_a_mean_only():
    # choices[].avg_decoded_tokens_per_iter
    acc = read_acceptance(fixture("trtllm_avg.json"), 22)
    assert acc.source == "choices[0].avg_decoded_tokens_per_iter"
    assert acc.mean_acc_len == 2.75 and acc.steps is None and acc.accepted is None


def test_trtllm_speculative_decoding_per_choice():
    # choices[].speculative_decoding, read with vLLM's field names
    acc = read_acceptance(fixture("trtllm_spec.json"), 16)
    assert acc.source == "choices[0].speculative_decoding" and (acc.steps, acc.accepted, acc.k) == (5, 10, 4)
    assert acc.mean_acc_len == 3.0


def test_llamacpp_timings_give_drafted_and_accepted_and_derived_steps():
    # timings.draft_n / timings.draft_n_accepted (present when drafting happened), timings.predicted_n
    acc = read_acceptance(fixture("llamacpp.json"), 40)
    assert acc.source == "timings.draft_n" and (acc.drafted, acc.accepted) == (36, 24)
    assert acc.steps == 40 - 1 - 24 and acc.mean_acc_len == pytest.approx(1 + 24 / 15)
    assert acc.acceptance_rate == pytest.approx(24 / 36)


def test_llama_cpp_python_server_returns_no_acceptance():
    assert read_acceptance(fixture("llama_cpp_python.json"), 3) is None
    assert read_acceptance({"choices": [{"text": "x"}], "metrics": {"speculative_decoding": None}}) is None


def test_the_record_is_one_shape_for_every_engine():
    for name in ("vllm_summary.json", "sglang_openai.json", "sglang_generate.json", "trtllm_avg.json",
                 "trtllm_spec.json", "llamacpp.json"):
        record = read_acceptance(fixture(name), 40).record()
        assert {"source", "mean_acc_len", "acceptance_rate"} <= set(record), name
        assert "per_step_accepted" not in record and "_fixture" not in record


@pytest.mark.parametrize("payload,message", [
    ({"metrics": {"speculative_decoding": [1, 2]}}, "expected an object"),
    ({"metrics": {"speculative_decoding": {"num_spec_steps": -1, "num_draft_tokens": 3,
                                           "num_accepted_draft_tokens": 1}}}, "num_spec_steps"),
    ({"metrics": {"speculative_decoding": {"num_spec_steps": 2, "num_draft_tokens": 3,
                                           "num_accepted_draft_tokens": 5}}}, "> num_draft_tokens"),
    ({"metrics": {"speculative_decoding": {"num_spec_steps": 2, "num_draft_tokens": 4, "num_accepted_draft_tokens": 1,
                                           "per_step_accepted": [1], "per_step_drafted": [2]}}}, "disagree"),
    ({"timings": {"draft_n": 3, "draft_n_accepted": 5}}, "draft_n_accepted"),
    ({"sglext": {"spec_tokens_details": {"spec_verify_ct": "many"}}}, "spec_verify_ct"),
    ({"choices": [{"avg_decoded_tokens_per_iter": 0.5}]}, ">= 1"),
])
def test_malformed_sd_fields_raise_a_payload_error(payload, message):
    with pytest.raises(PayloadError, match=message):
        read_acceptance(payload, 10)


def test_scrape_vllm_counters_summed_over_engines_and_differenced():
    after = parse_counters((FIXTURES / "vllm_metrics.txt").read_text())
    assert after["prefix"] == "vllm" and after["num_drafts"] == 150 and after["num_accepted_tokens"] == 270
    assert after["accepted_per_pos"] == {0: 120, 1: 90, 2: 60}
    before = {"num_drafts": 50, "num_draft_tokens": 150, "num_accepted_tokens": 70, "accepted_per_pos": {0: 40}}
    cell = difference(before, after)
    assert cell["num_drafts"] == 100 and cell["num_accepted_tokens"] == 200
    assert cell["mean_acc_len"] == 3.0 and cell["acceptance_rate"] == pytest.approx(200 / 300)
    assert cell["acceptance_by_position"] == [0.8, 0.9, 0.6]


def test_scrape_llamacpp_and_sglang():
    llama = parse_counters((FIXTURES / "llamacpp_metrics.txt").read_text())
    assert llama["prefix"] == "llamacpp" and (llama["num_drafts"], llama["num_accepted_tokens"]) == (40, 64)
    assert difference({}, llama)["mean_acc_len"] == pytest.approx(1 + 64 / 40)
    sglang = parse_counters((FIXTURES / "sglang_metrics.txt").read_text())
    cell = difference(sglang, sglang)  # gauges: the last batch's values, never differenced
    assert cell == {"sglang_spec_accept_length": 2.9, "sglang_spec_accept_rate": 0.48}
    assert difference({}, {}) is None
    with pytest.raises(ValueError):
        parse_counters("this is { not prometheus")
