"""Fixtures of the server tests: `specscope serve`'s app over the tiny model, in-process (`tiny_app`: Starlette's
TestClient) or on a real socket in a thread (`tiny_server`: its base URL)."""

import pytest

from server_helpers import ThreadServer, tiny_service


@pytest.fixture
def tiny_app(tiny_model):
    """A TestClient over the tiny model's server (ngram, k = 3, batch 4), lifespan running."""
    from fastapi.testclient import TestClient

    app, loop, tokenizer, served = tiny_service(tiny_model)
    with TestClient(app) as client:
        client.loop, client.tokenizer, client.served = loop, tokenizer, served
        yield client


@pytest.fixture
def tiny_server(tiny_model):
    """The tiny model's server on a real socket: yields (base URL ending in /v1, engine loop)."""
    app, loop, _, _ = tiny_service(tiny_model)
    with ThreadServer(app) as server:
        yield server.url, loop
