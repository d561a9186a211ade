"""`specscope serve`'s ASGI app: an OpenAI-compatible HTTP server over the built-in engine (FastAPI + uvicorn).

    app = create_app(EngineLoop(engine, max_len), tokenizer, served, ServerMetrics(...))
    run_server(app, "127.0.0.1", 8000)        # until SIGINT / SIGTERM

Routes: POST /v1/completions, POST /v1/chat/completions (streamed as server-sent events with
`"stream": true`), GET /v1/models, /health, /version, /metrics (Prometheus text, `metrics.py`).
Request and response shapes: `protocol.py`. Each request becomes one engine request submitted to the
running engine (`worker.py`): it takes a free batch slot at the next step and its prefill shares that
step with the others' decodes (continuous batching); its tokens come back as the steps commit them.

A client that goes away frees its sequence: a stream notices when its next chunk cannot be sent or the
connection closes, a plain request when the connection closes; either cancels the engine request.
More than `max_waiting` requests waiting for a slot: 429. Every refusal is a 4xx with an OpenAI-shaped
JSON error. SIGINT / SIGTERM: uvicorn stops accepting, lets open requests finish for a few seconds,
then the engine thread cancels what is left and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid

from fastapi import FastAPI, Request as HttpRequest
from fastapi.responses import JSONResponse, Response, StreamingResponse

from specscope import __version__
from specscope.engine.scheduler import Request
from specscope.server.metrics import ServerMetrics
from specscope.server.protocol import (ApiError, Generation, ServedModel, chunk_body, completion_body,
                                       parse_generation, spec_decode_metrics, usage_chunk)
from specscope.server.text import IncrementalText
from specscope.server.worker import EngineLoop, Job

GRACEFUL_SHUTDOWN_S = 5  # open requests get this long to finish after SIGINT / SIGTERM


class ClientGone(Exception):
    """The client closed its connection."""


class Pending:
    """One request in flight as the asyncio side sees it: the engine thread's events arrive on `events`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: Request):
        self.loop, self.request = loop, request
        self.events: asyncio.Queue = asyncio.Queue()
        self.finished = False

    def on_event(self, kind: str, payload) -> None:  # engine thread
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, payload))


class Service:
    """What the routes share: the engine loop, the tokenizer, the served model, its metrics."""

    def __init__(self, engine_loop: EngineLoop, tokenizer, served: ServedModel, metrics: ServerMetrics,
                 max_waiting: int = 256):
        self.engine_loop, self.tokenizer, self.served, self.metrics = engine_loop, tokenizer, served, metrics
        self.max_waiting = max_waiting

    def submit(self, gen: Generation) -> Pending:
        if not self.engine_loop.alive:
            raise ApiError(503, "the engine is not running (the server is shutting down)")
        if self.engine_loop.num_waiting >= self.max_waiting:
            raise ApiError(429, f"{self.engine_loop.num_waiting} requests are already waiting for a batch slot; "
                           "retry later (or serve with a larger --max-waiting)")
        request = Request(f"req-{uuid.uuid4().hex[:16]}", gen.prompt_ids, gen.max_tokens)
        pending = Pending(asyncio.get_running_loop(), request)
        self.engine_loop.submit(Job(request, pending.on_event))
        return pending

    def cancel(self, pending: Pending) -> None:
        if not pending.finished:
            pending.finished = True
            self.engine_loop.cancel(pending.request.id)

    def sd_metrics(self, seq) -> dict | None:
        return spec_decode_metrics(list(seq.proposed), list(seq.accepted), self.served.num_spec_tokens,
                                   self.served.metrics_level)


def create_app(engine_loop: EngineLoop, tokenizer, served: ServedModel, metrics: ServerMetrics,
               max_waiting: int = 256, on_started=None, on_stopped=None):
    """The FastAPI app; its lifespan starts the engine thread (then calls `on_started()`) and stops it on shutdown
    (then calls `on_stopped()`)."""
    service = Service(engine_loop, tokenizer, served, metrics, max_waiting)
    started = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        engine_loop.start()
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            await asyncio.to_thread(engine_loop.stop)
            if on_stopped is not None:
                on_stopped()

    app = FastAPI(title="specscope serve", version=__version__, lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request, err: ApiError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.get("/health")
    async def health():
        if not engine_loop.alive:
            return JSONResponse(ApiError(503, "the engine thread is not running").body(), status_code=503)
        return {"status": "ok"}

    @app.get("/version")
    async def version():
        return {"version": __version__, "engine": "specscope",
                "speculative": {"proposer": served.proposer, "method": served.method,
                                "num_spec_tokens": served.num_spec_tokens}}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": served.name, "object": "model", "created": started,
                                            "owned_by": "specscope", "max_model_len": served.max_model_len}]}

    @app.get("/metrics")
    async def prometheus():
        body = metrics.exposition(engine_loop.num_running, engine_loop.num_waiting)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def generate(http: HttpRequest, chat: bool):
        try:
            body = await http.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ApiError(400, f"the request body is not valid JSON ({err})") from None
        gen = parse_generation(body, chat, served, tokenizer)
        pending = service.submit(gen)
        rid, created = ("chatcmpl-" if chat else "cmpl-") + pending.request.id[4:], int(time.time())
        if gen.stream:
            return StreamingResponse(_stream(service, http, gen, pending, rid, created),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        disconnect = asyncio.ensure_future(_disconnected(http))
        try:
            text, ids, seq = await _collect(service, gen, pending, disconnect)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it
        finally:
            disconnect.cancel()
            service.cancel(pending)
        reason = _finish_reason(seq, text)
        return completion_body(gen, rid, created, served.name, text.text, reason, ids, service.sd_metrics(seq))

    @app.post("/v1/completions")
    async def completions(http: HttpRequest):
        return await generate(http, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(http: HttpRequest):
        return await generate(http, chat=True)

    return app


async def _disconnected(http) -> None:
    """Returns when the client closes the connection (the body is already read)."""
    while True:
        message = await http.receive()
        if message["type"] == "http.disconnect":
            return


async def _next_event(pending: Pending, disconnect: asyncio.Future):
    get = asyncio.ensure_future(pending.events.get())
    done, _ = await asyncio.wait({get, disconnect}, return_when=asyncio.FIRST_COMPLETED)
    if get in done:
        return get.result()
    get.cancel()
    raise ClientGone


async def _events(service: Service, gen: Generation, pending: Pending, disconnect: asyncio.Future):
    """(new ids, text delta) per engine event until the sequence is done; then (None, sequence)."""
    text = IncrementalText(service.tokenizer, gen.stop)
    ids: list[int] = []
    while True:
        kind, payload = await _next_event(pending, disconnect)
        if kind == "error":
            raise ApiError(500, str(payload))
        if kind == "done":
            pending.finished = True
            if payload.error:
                raise ApiError(400, payload.error)
            yield None, (text, ids, payload)
            return
        if text.stopped:
            continue  # tokens of the step that reached a stop string: not part of the output
        delta = text.add(payload)
        new = payload if not text.stopped else _ids_to_stop(service.tokenizer, ids, payload, text.text)
        ids.extend(new)
        if text.stopped:  # end it before the next step; its `done` (with its SD metrics) still comes
            service.engine_loop.cancel(pending.request.id)
        yield new, delta


def _ids_to_stop(tokenizer, before: list[int], new: list[int], text: str) -> list[int]:
    """Of a step's new tokens, those needed to produce `text` (the output cut before a stop string)."""
    for n in range(1, len(new) + 1):
        if len(tokenizer.decode(before + new[:n], skip_special_tokens=True)) >= len(text):
            return new[:n]
    return new


async def _collect(service: Service, gen: Generation, pending: Pending, disconnect):
    async for new, item in _events(service, gen, pending, disconnect):
        if new is None:
            text, ids, seq = item
            text.finish()
            return text, ids, seq
    raise ApiError(500, "the engine ended the request without a result")


async def _stream(service: Service, http, gen: Generation, pending: Pending, rid: str, created: int):
    """The server-sent events of one streamed request."""
    name = service.served.name
    disconnect = asyncio.ensure_future(_disconnected(http))
    first = True
    try:
        async for new, item in _events(service, gen, pending, disconnect):
            if new is None:
                text, ids, seq = item
                rest = text.finish()
                yield _sse(chunk_body(gen, rid, created, name, rest, _finish_reason(seq, text), [], first=first))
                if gen.include_usage:
                    yield _sse(usage_chunk(gen, rid, created, name, len(ids), service.sd_metrics(seq)))
                yield "data: [DONE]\n\n"
                return
            if new or item or first:
                yield _sse(chunk_body(gen, rid, created, name, item, None, new, first=first))
                first = False
    except ApiError as err:  # the stream has begun: the error goes out as an event
        yield _sse(err.body())
        yield "data: [DONE]\n\n"
    except ClientGone:
        return
    finally:
        disconnect.cancel()
        service.cancel(pending)


def _finish_reason(seq, text: IncrementalText) -> str:
    if text.stopped:
        return "stop"
    return {"cancelled": "abort"}.get(seq.finish_reason, seq.finish_reason)


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


# ------------------------------------------------------------------------------------------------ running


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); OSError is the caller's to report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections made while the model loads wait in the backlog instead of being refused
    sock.set_inheritable(True)
    return sock


def run_server(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve `app` on the bound socket until SIGINT / SIGTERM (uvicorn's handlers: a clean shutdown)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                            access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
