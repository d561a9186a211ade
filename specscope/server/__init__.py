"""HTTP: `specscope serve` (an OpenAI-compatible server over the built-in engine) and the client `specscope bench`
measures any such server with.

    protocol.py   request checking, response shapes, per-request SD metrics in vLLM's shape
    worker.py     the engine on its own thread; requests join and leave between steps
    text.py       streamed detokenisation and stop strings
    app.py        the FastAPI app and running it with uvicorn
    metrics.py    Prometheus counters (vLLM's names, `specscope:` prefix) and the /metrics scraper
    client.py     the benchmark's HTTP client: probe, one request, timing, errors
    adapters.py   SD acceptance from each engine's payload (vLLM, SGLang, TensorRT-LLM, llama.cpp)

Sits beside `engine/` (imports engine, formats, settings); `study/serving.py` and `study/bench.py` use it.
Needs the `server` extra: pip install 'specscope[server]'.
"""
