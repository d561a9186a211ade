"""Serve the built-in engine over HTTP: the target and drafter a run would use, behind `server/app.py`.

    sock = bind_address(options)                      # fails fast: the port is taken, the host unknown
    served = serve(settings, options, sock, on_ready)  # loads, warms up, serves until SIGINT / SIGTERM

The engine is the one `specscope run` builds from the same settings (`EngineBackend`: model, device,
threads, quant; the method's proposer, or `--k adaptive`'s drafter), so greedy outputs through the
server are `run`'s. `settings.batch_size` is the most sequences decoded at once (`--max-batch-size`).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Callable

from specscope.errors import SpecscopeError
from specscope.settings import RunSettings
from specscope.study.engine_backend import EngineBackend, stop_token_ids

DEFAULT_MAX_MODEL_LEN = 2048


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str | None = None  # None: the model's name (smollm2-135m for the default)
    max_model_len: int = DEFAULT_MAX_MODEL_LEN  # prompt + output + a step's lookahead, per sequence
    metrics_level: str = "detailed"  # --per-request-spec-decode-metrics: none | summary | detailed
    max_waiting: int = 256  # requests waiting for a slot beyond which new ones get 429
    log_level: str = "warning"

    def check(self) -> "ServeOptions":
        from specscope.server.protocol import METRICS_LEVELS

        if not 0 <= self.port <= 65535:
            raise SpecscopeError(f"--port {self.port}: must be between 0 and 65535 (0: any free port)")
        if self.max_model_len < 16:
            raise SpecscopeError(f"--max-model-len {self.max_model_len}: must be at least 16 tokens")
        if self.metrics_level not in METRICS_LEVELS:
            raise SpecscopeError(f"--per-request-spec-decode-metrics {self.metrics_level}: use one of "
                                 f"{', '.join(METRICS_LEVELS)}")
        if self.max_waiting < 1:
            raise SpecscopeError(f"--max-waiting {self.max_waiting}: must be >= 1")
        return self


def bind_address(options: ServeOptions) -> socket.socket:
    """The server's socket, bound now (before the model loads) so a taken port fails at once."""
    from specscope.server.app import bind

    try:
        return bind(options.host, options.port)
    except OSError as err:
        raise SpecscopeError(f"--host {options.host} --port {options.port}: cannot listen there ({err.strerror or err}); "
                             "pick another --port (0: any free one)") from None


def serve(settings: RunSettings, options: ServeOptions, sock: socket.socket,
          on_ready: Callable[[dict], None] | None = None, on_stopped: Callable[[], None] | None = None) -> None:
    """Load the engine and serve it on `sock` until SIGINT / SIGTERM. `on_ready(info)` once the engine runs and
    the server is about to accept: url, model, method, k, max_batch_size, max_model_len, kv_cache_mb;
    `on_stopped()` once a shutdown has finished the open requests and stopped the engine (uvicorn then re-raises
    the signal: SIGINT ends as KeyboardInterrupt, SIGTERM as the default termination)."""
    from specscope.engine.engine import Engine
    from specscope.server.app import create_app, run_server
    from specscope.server.metrics import ServerMetrics
    from specscope.server.protocol import ServedModel
    from specscope.server.worker import EngineLoop

    backend = EngineBackend(settings, warm=True)
    _, target, tokenizer, name = backend.load()
    engine = Engine(target, backend.drafter(settings), settings, stop_token_ids(target, tokenizer))
    lookahead = engine.draft_budget + 1
    max_len = min(options.max_model_len, target.config.max_position + lookahead)
    k = engine.draft_budget if settings.speculates else 0
    served = ServedModel(name=options.served_model_name or name, max_model_len=max_len, lookahead=lookahead,
                         vocab_size=target.config.vocab_size, temperature=settings.temperature, top_p=settings.top_p,
                         num_spec_tokens=k, metrics_level=options.metrics_level,
                         proposer=settings.proposer.method, method=engine.drafter.label)
    loop = EngineLoop(engine, max_len)
    metrics = ServerMetrics(served.name, k)
    loop.on_finished = metrics.observe_finished
    host, port = sock.getsockname()[:2]
    info = {"url": f"http://{_host(host)}:{port}/v1", "model": served.name, "method": served.method, "k": k,
            "max_batch_size": settings.batch_size, "max_model_len": max_len,
            "kv_cache_mb": round(engine.kv_cache_nbytes() / 2**20, 1)}
    app = create_app(loop, tokenizer, served, metrics, options.max_waiting,
                     on_started=None if on_ready is None else lambda: on_ready(info), on_stopped=on_stopped)
    run_server(app, sock, options.log_level)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
