"""The HTTP side of `specscope bench`: find out what an endpoint serves, send one request, time what comes back.

    info = await probe(client, "http://127.0.0.1:8000/v1", "smollm2-135m")   # or raises EndpointError
    body = request_body("chat", "smollm2-135m", prompt, max_tokens=64, stream=True)
    got = await exchange(client, info.url + "/chat/completions", body, stream=True, timeout_s=300)
    got.ttft_s, got.chunk_times, got.text, got.response     # `response`: the stream folded into one object

One request's problems (HTTP 429 / 5xx, a body that is not JSON, a malformed server-sent event, a
timeout, a dropped connection) end up in `Exchange.error`, never as an exception: a benchmark records
them per request and goes on. Only `probe` raises, before any load is sent: an endpoint that does not
answer, does not speak the OpenAI API, or does not serve the model named.

Streaming latency is measured here, client side, as `vllm bench serve` and aiperf do: time to first
token = until the first event that carries output; the arrival time of every later event that carries
output gives the inter-token latencies (with SD one event may carry several tokens).

Requests ask for what the engines offer (`stream_options.include_usage` so the last event has the usage
and vLLM's per-request SD metrics; `return_token_ids`, vLLM's, for the token ids a trace needs;
`return_spec_tokens_details`, SGLang's). Servers ignore fields they do not know (OpenAI-compatible
servers built on pydantic drop unknown fields); `extensions=False` leaves them out for one that does not.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx


class EndpointError(Exception):
    """The endpoint cannot be benchmarked (one line saying why and what to do)."""


@dataclass(frozen=True)
class EndpointInfo:
    """What an endpoint says about itself."""

    url: str  # the OpenAI base URL, ending in /v1
    root: str  # the server's root (where /metrics, /version and /health live)
    model: str
    owned_by: str | None = None  # /v1/models' owned_by: vllm, sglang, specscope, ...
    version: str | None = None  # /version's, where offered
    server_header: str | None = None  # the HTTP Server header
    max_model_len: int | None = None
    speculative: dict | None = None  # specscope serve's /version: its method and k

    @property
    def engine(self) -> str:
        return self.owned_by or (self.server_header or "unknown").split("/")[0]


def endpoint_root(url: str) -> str:
    """`http://h:p/v1` -> `http://h:p` (the server's own paths live at its root)."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def probe(client: httpx.AsyncClient, url: str, model: str, timeout_s: float = 10.0) -> EndpointInfo:
    """Check that `url` (…/v1) answers /models and serves `model`; read its version where it offers one."""
    url = url.rstrip("/")
    try:
        response = await client.get(url + "/models", timeout=timeout_s)
    except httpx.HTTPError as err:
        raise EndpointError(f"{url}: no answer ({_why(err)}); is the server running? (`specscope serve` prints "
                            "its address)") from None
    if response.status_code != 200:
        raise EndpointError(f"{url}/models answered HTTP {response.status_code}; pass the server's OpenAI base URL "
                            "(e.g. http://127.0.0.1:8000/v1)")
    try:
        data = response.json()["data"]
        served = {m["id"]: m for m in data}
    except (ValueError, KeyError, TypeError):
        raise EndpointError(f"{url}/models did not return an OpenAI model list; is this an OpenAI-compatible "
                            "server?") from None
    if model not in served:
        raise EndpointError(f"{url} does not serve model '{model}'. Available: {', '.join(served) or 'none'}")
    entry = served[model]
    root = endpoint_root(url)
    version, speculative = None, None
    try:
        answer = await client.get(root + "/version", timeout=timeout_s)
        if answer.status_code == 200:
            body = answer.json()
            version = str(body.get("version")) if isinstance(body, dict) and body.get("version") else None
            speculative = body.get("speculative") if isinstance(body, dict) else None
    except (httpx.HTTPError, ValueError):
        pass
    length = entry.get("max_model_len")
    return EndpointInfo(url=url, root=root, model=model, owned_by=entry.get("owned_by"), version=version,
                        server_header=response.headers.get("server"),
                        max_model_len=length if isinstance(length, int) else None,
                        speculative=speculative if isinstance(speculative, dict) else None)


async def scrape(client: httpx.AsyncClient, root: str, timeout_s: float = 10.0) -> str | None:
    """The server's /metrics text, or None where it has none."""
    try:
        response = await client.get(root + "/metrics", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def request_body(api: str, model: str, prompt, max_tokens: int, stream: bool, extensions: bool = True) -> dict:
    """The JSON body for one workload prompt: its messages to /chat/completions, its plain text to /completions
    (greedy: temperature 0)."""
    body: dict = {"model": model, "max_tokens": max_tokens, "temperature": 0.0, "stream": stream}
    if api == "chat":
        body["messages"] = [dict(m) for m in prompt.messages]
    else:
        body["prompt"] = prompt.text
    if stream:
        body["stream_options"] = {"include_usage": True}
    if extensions:
        body["return_token_ids"] = True
        body["return_spec_tokens_details"] = True
    return body


@dataclass
class Exchange:
    """What one request got back, and when (seconds since it was sent)."""

    status: int | None = None
    error: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    chunk_times: list[float] = field(default_factory=list)  # arrival of each event that carried output
    text: str = ""
    token_ids: list[int] | None = None
    prompt_token_ids: list[int] | None = None
    usage: dict | None = None
    finish_reason: str | None = None
    response: dict = field(default_factory=dict)  # the JSON response (a stream: folded into one)

    @property
    def completion_tokens(self) -> int | None:
        tokens = (self.usage or {}).get("completion_tokens")
        return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None


async def exchange(client: httpx.AsyncClient, url: str, body: dict, stream: bool, timeout_s: float) -> Exchange:
    """Send one request; every problem lands in `Exchange.error`."""
    got = Exchange()
    start = time.perf_counter()
    try:
        await asyncio.wait_for(_send(client, url, body, stream, got, start), timeout_s)
    except asyncio.TimeoutError:
        got.error = f"timed out after {timeout_s:g} s"
    except httpx.HTTPError as err:
        got.error = f"connection: {_why(err)}"
    except (ProtocolProblem, ValueError) as err:
        got.error = str(err)
    except Exception as err:  # noqa: BLE001 - anything else a server or transport does is this request's failure
        got.error = f"client: {type(err).__name__}: {_why(err)}"
    got.latency_s = time.perf_counter() - start
    return got


class ProtocolProblem(Exception):
    """The server's answer is not what the OpenAI API promises."""


async def _send(client, url, body, stream, got: Exchange, start: float) -> None:
    if not stream:
        response = await client.post(url, json=body, timeout=None)
        got.status = response.status_code
        if response.status_code != 200:
            raise ProtocolProblem(_http_error(response.status_code, response.text))
        try:
            payload = response.json()
        except ValueError:
            raise ProtocolProblem(f"malformed JSON response: {_clip(response.text)}") from None
        if not isinstance(payload, dict):
            raise ProtocolProblem(f"malformed JSON response: expected an object, got {_clip(response.text)}")
        _take_whole(got, payload)
        return
    async with client.stream("POST", url, json=body, timeout=None) as response:
        got.status = response.status_code
        if response.status_code != 200:
            text = (await response.aread()).decode("utf-8", "replace")
            raise ProtocolProblem(_http_error(response.status_code, text))
        chunks = []
        async for line in response.aiter_lines():
            line = line.strip()
            if not line or line.startswith(":") or not line.startswith("data:"):
                continue  # blank separators, comments, event names
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                raise ProtocolProblem(f"malformed SSE event (not JSON): {_clip(data)}") from None
            if not isinstance(chunk, dict):
                raise ProtocolProblem(f"malformed SSE event (not an object): {_clip(data)}")
            if "error" in chunk and "choices" not in chunk:
                raise ProtocolProblem(f"the server reported an error mid-stream: {_clip(json.dumps(chunk['error']))}")
            if _carries_output(chunk):
                now = time.perf_counter() - start
                got.ttft_s = now if got.ttft_s is None else got.ttft_s
                got.chunk_times.append(now)
            chunks.append(chunk)
        if not chunks:
            raise ProtocolProblem("the stream ended without any event")
        _take_whole(got, fold_stream(chunks))


def fold_stream(chunks: list[dict]) -> dict:
    """A stream as one response: root fields of every chunk (later win), choice 0's text / token ids
    concatenated and its other fields (finish_reason, engine extras) from the latest chunk that has them."""
    folded: dict = {}
    choice: dict = {}
    text, ids, any_ids = [], [], False
    for chunk in chunks:
        for key, value in chunk.items():
            if key != "choices" and value is not None:
                folded[key] = value
        for c in chunk.get("choices") or []:
            if not isinstance(c, dict) or c.get("index", 0) != 0:
                continue
            delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
            piece = delta.get("content") if "delta" in c else c.get("text")
            if isinstance(piece, str):
                text.append(piece)
            if isinstance(c.get("token_ids"), list):
                any_ids = True
                ids.extend(c["token_ids"])
            for key, value in c.items():
                if key not in ("delta", "text", "token_ids", "index") and value is not None:
                    choice[key] = value
    choice["text"] = "".join(text)
    if any_ids:
        choice["token_ids"] = ids
    folded["choices"] = [choice]
    return folded


def _take_whole(got: Exchange, payload: dict) -> None:
    """Fill the exchange from a whole (or folded) response."""
    got.response = payload
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProtocolProblem(f"the response has no choices: {_clip(json.dumps(payload))}")
    choice = choices[0]
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else choice.get("text")
    got.text = text if isinstance(text, str) else ""
    got.finish_reason = choice.get("finish_reason")
    got.usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
    got.token_ids = _id_list(choice.get("token_ids"))
    got.prompt_token_ids = _id_list(payload.get("prompt_token_ids")) or _id_list(choice.get("prompt_token_ids"))


def _carries_output(chunk: dict) -> bool:
    for c in chunk.get("choices") or []:
        if not isinstance(c, dict):
            continue
        delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
        if delta.get("content") or c.get("text") or c.get("token_ids"):
            return True
    return False


def _id_list(value) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return list(value)
    return None


def _http_error(status: int, text: str) -> str:
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text
    return f"HTTP {status}: {_clip(str(message))}"


def _why(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _clip(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."
