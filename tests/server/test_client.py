"""The benchmark client: every problem a server can cause is one per-request error, never an exception; probe errors
are one line."""

import asyncio
import json

import httpx
import pytest

from specscope.server.client import EndpointError, exchange, fold_stream, probe, request_body
from specscope.workloads.prompt import Prompt


def run_exchange(handler, stream=True, timeout_s=5.0):
    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await exchange(client, "http://x/v1/completions", {"model": "m"}, stream, timeout_s)

    return asyncio.run(go())


def sse(*events):
    return "".join(f"data: {e}\n\n" for e in events).encode()


@pytest.mark.parametrize("status,body,expected", [
    (429, {"error": {"message": "too many requests waiting", "type": "RateLimitError"}}, "HTTP 429: too many"),
    (500, "Internal Server Error", "HTTP 500: Internal Server Error"),
    (503, {"error": {"message": "shutting down"}}, "HTTP 503: shutting down"),
])
@pytest.mark.parametrize("stream", [True, False])
def test_http_errors_are_recorded(status, body, expected, stream):
    content = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    got = run_exchange(lambda r: httpx.Response(status, content=content), stream)
    assert got.status == status and got.error.startswith(expected)


def test_malformed_json_and_sse():
    got = run_exchange(lambda r: httpx.Response(200, content=b"{oops"), stream=False)
    assert got.error.startswith("malformed JSON response")
    got = run_exchange(lambda r: httpx.Response(200, content=sse('{"choices": [{"text": "a"}]}', "{oops", "[DONE]")))
    assert got.error.startswith("malformed SSE event (not JSON)")
    got = run_exchange(lambda r: httpx.Response(200, content=sse("[1, 2]")))
    assert got.error.startswith("malformed SSE event (not an object)")
    got = run_exchange(lambda r: httpx.Response(200, content=b"\n\n"))
    assert got.error == "the stream ended without any event"
    got = run_exchange(lambda r: httpx.Response(200, content=sse('{"error": {"message": "boom"}}')))
    assert "error mid-stream" in got.error and "boom" in got.error
    got = run_exchange(lambda r: httpx.Response(200, content=b'{"id": 1}'), stream=False)
    assert got.error.startswith("the response has no choices")


def test_a_hung_request_times_out():
    async def hang(request):
        await asyncio.sleep(30)

    got = run_exchange(hang, timeout_s=0.3)
    assert got.error == "timed out after 0.3 s" and got.latency_s < 5


def test_a_refused_connection_is_an_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    got = run_exchange(refuse)
    assert got.error == "connection: connection refused"


def test_fold_stream_concatenates_choice_zero_and_keeps_root_extras():
    chunks = [{"id": "a", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
              {"id": "a", "choices": [{"index": 0, "delta": {"content": "x"}, "token_ids": [5]}],
               "timings": {"draft_n": 1}},
              {"id": "a", "choices": [{"index": 0, "delta": {"content": "y"}, "token_ids": [6],
                                       "finish_reason": "stop"}], "timings": {"draft_n": 2, "draft_n_accepted": 1}}]
    folded = fold_stream(chunks)
    assert folded["choices"] == [{"finish_reason": "stop", "text": "xy", "token_ids": [5, 6]}]
    assert folded["timings"] == {"draft_n": 2, "draft_n_accepted": 1}


def test_request_body_chat_and_completions():
    prompt = Prompt("p", "chat", ({"role": "user", "content": "hi"},), 32)
    chat = request_body("chat", "m", prompt, 16, stream=True)
    assert chat["messages"] == [{"role": "user", "content": "hi"}] and chat["stream_options"] == {"include_usage": True}
    assert chat["temperature"] == 0.0 and chat["return_token_ids"] is True
    raw = request_body("completions", "m", prompt, 16, stream=False, extensions=False)
    assert raw["prompt"] == "hi" and "return_token_ids" not in raw and "stream_options" not in raw


@pytest.mark.parametrize("handler,message", [
    (lambda r: httpx.Response(404, content=b"no"), "answered HTTP 404"),
    (lambda r: httpx.Response(200, content=b"[]"), "did not return an OpenAI model list"),
    (lambda r: httpx.Response(200, json={"data": [{"id": "other"}]}), "does not serve model 'm'. Available: other"),
])
def test_probe_errors_are_one_line(handler, message):
    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await probe(client, "http://x/v1", "m")

    with pytest.raises(EndpointError, match=message):
        asyncio.run(go())


def test_probe_reads_version_and_owner():
    def handler(request):
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "owned_by": "vllm", "max_model_len": 4096}]},
                                  headers={"server": "uvicorn"})
        return httpx.Response(200, json={"version": "0.29.1"})

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await probe(client, "http://x/v1/", "m")

    info = asyncio.run(go())
    assert (info.engine, info.version, info.max_model_len, info.root) == ("vllm", "0.29.1", 4096, "http://x")
