"""Helpers of the server tests: a word tokenizer that also decodes, `specscope serve`'s app over the tiny model, and
uvicorn serving an app on a real socket in a thread."""

from __future__ import annotations

import socket
import threading
import time

from specscope.engine.engine import Engine
from specscope.engine.proposers import build_proposer
from specscope.server.app import create_app
from specscope.server.metrics import ServerMetrics
from specscope.server.protocol import ServedModel
from specscope.server.worker import EngineLoop
from specscope.settings import RunSettings
from word_tokenizer import WordTokenizer

TINY = "tiny"
MAX_LEN = 256


class DecodingWordTokenizer(WordTokenizer):
    """WordTokenizer plus `decode` (ids it never saw come back as `w<id>`), with a chat template."""

    eos_token_id = 2

    def __init__(self):
        super().__init__(chat_template="<role> content")

    def decode(self, ids, skip_special_tokens=True):
        words = {i: w for w, i in self.vocab.items()}
        return " ".join(words.get(int(i), f"w{int(i)}") for i in ids)


def tiny_engine(model, method="ngram", k=3, batch_size=4):
    settings = RunSettings.build(method=method, k=k, batch_size=batch_size, max_new_tokens=16)
    return Engine(model, build_proposer(method, settings, target=model), settings, stop_token_ids=(2,))


def tiny_service(model, method="ngram", k=3, batch_size=4, max_waiting=64, level="detailed"):
    """(app, engine loop, tokenizer, served model) of a server over the tiny model; the loop is not started."""
    engine = tiny_engine(model, method, k, batch_size)
    tokenizer = DecodingWordTokenizer()
    spec = engine.draft_budget if method != "none" else 0
    served = ServedModel(name=TINY, max_model_len=MAX_LEN, lookahead=engine.draft_budget + 1,
                         vocab_size=model.config.vocab_size, num_spec_tokens=spec, metrics_level=level,
                         proposer=method, method=method)
    loop = EngineLoop(engine, MAX_LEN)
    metrics = ServerMetrics(TINY, spec)
    loop.on_finished = metrics.observe_finished
    return create_app(loop, tokenizer, served, metrics, max_waiting), loop, tokenizer, served


class ThreadServer:
    """uvicorn serving an app on 127.0.0.1 (a free port) in a thread, stopped on exit."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
