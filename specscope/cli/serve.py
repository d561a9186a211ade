"""`specscope serve`: an OpenAI-compatible HTTP server over the built-in engine, plain or speculative.

    specscope serve --method ngram --k 3 --max-batch-size 16 --port 8000
    specscope serve --method draft --draft-model self:16 --k 3
    specscope serve --method ngram,draft --k adaptive
    curl http://127.0.0.1:8000/v1/chat/completions -d '{"model": "smollm2-135m", "messages": [...]}'

Routes: /v1/completions, /v1/chat/completions (streaming with "stream": true), /v1/models, /health,
/version, /metrics. Requests join the running batch (continuous batching, up to --max-batch-size at
once). Each response carries its SD metrics in vLLM's shape (`metrics.speculative_decoding`;
--per-request-spec-decode-metrics none | summary | detailed) and /metrics has vLLM-named counters under a
`specscope:` prefix (`specscope/server/`). Binds to 127.0.0.1 unless --host says otherwise. Ctrl-C (or
SIGTERM) stops it cleanly. Measure it with `specscope bench --endpoint http://127.0.0.1:8000/v1 ...`.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from specscope.cli.options import (DeviceOpt, DraftModelOpt, HeadOpt, ModelOpt, NgramMaxOpt, NgramMinOpt, QuantOpt,
                                   ThreadsOpt, TreeOpt, run_settings)
from specscope.settings import ADAPTIVE_COST_MODEL


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    model: ModelOpt = None,
    method: Annotated[str, typer.Option("--method", help="none, ngram, draft, eagle, eagle3 or mtp.")] = "none",
    k: Annotated[str, typer.Option("--k", help="Draft tokens proposed per step, or 'adaptive'.")] = "3",
    cost_model: Annotated[Optional[str], typer.Option(
        "--cost-model", help=f"With --k adaptive: cost-model preset or .toml (default {ADAPTIVE_COST_MODEL}).")] = None,
    draft_model: DraftModelOpt = None,
    head: HeadOpt = None,
    tree: TreeOpt = None,
    ngram_min: NgramMinOpt = None,
    ngram_max: NgramMaxOpt = None,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", "-b",
                                                help="Most sequences decoded at once; more requests wait.")] = 16,
    max_model_len: Annotated[int, typer.Option("--max-model-len",
                                               help="Prompt + output tokens a request may use (sizes the KV cache).")] = 2048,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling for every request; 0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (with --temperature > 0).")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampling.")] = 0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    quant: QuantOpt = "auto",
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8000,
    served_model_name: Annotated[Optional[str], typer.Option(
        "--served-model-name", help="Model name clients ask for (default: the model's, e.g. smollm2-135m).")] = None,
    metrics_level: Annotated[str, typer.Option(
        "--per-request-spec-decode-metrics", help="SD metrics in each response (vLLM's flag): none, summary, "
        "detailed (with per-step arrays).")] = "detailed",
    max_waiting: Annotated[int, typer.Option("--max-waiting", help="Requests waiting for a slot beyond which new "
                                             "ones get HTTP 429.")] = 256,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level (info logs every request).")] = "warning",
) -> None:
    """Serve the engine over an OpenAI-compatible HTTP API (continuous batching, SD metrics per request)."""
    from specscope.study.serving import ServeOptions, bind_address, serve as serve_job

    err = Console(stderr=True)
    settings = run_settings(model=model, device=device, threads=threads, quant=quant, method=method, k=k,
                            cost_model=cost_model, batch_size=max_batch_size, temperature=temperature, top_p=top_p,
                            seed=seed, draft_model=draft_model, head=head, tree=tree, ngram_min=ngram_min,
                            ngram_max=ngram_max, console=err)
    options = ServeOptions(host=host, port=port, served_model_name=served_model_name, max_model_len=max_model_len,
                           metrics_level=metrics_level, max_waiting=max_waiting, log_level=log_level).check()
    sock = bind_address(options)  # a taken port fails now, not after the model loads
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]note: listening on {host}: anyone who can reach this machine can use the server[/yellow]")
    err.print("specscope serve: loading the model ...")

    def ready(info: dict) -> None:
        spec = f"{info['method']} k={info['k']}" if info["k"] else "plain decoding"
        print(f"specscope serve: listening on {info['url']} - model {info['model']}, {spec}, batch <= "
              f"{info['max_batch_size']}, context {info['max_model_len']} (KV cache {info['kv_cache_mb']:.0f} MiB). "
              "Ctrl-C stops.", flush=True)

    try:
        serve_job(settings, options, sock, on_ready=ready,
                  on_stopped=lambda: print("specscope serve: stopped (open requests finished or cancelled)", flush=True))
    finally:
        sock.close()
