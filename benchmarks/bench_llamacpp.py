"""`specscope bench` against a real llama.cpp server: llama-cpp-python's OpenAI server with prompt-lookup drafting.

    # once, ~10 min (an optional benchmark dependency, not in CI; a separate venv):
    python3 -m venv /work/venv-llama && CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \\
        -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" /work/venv-llama/bin/pip install \\
        'llama-cpp-python[server]==0.3.36'
    python benchmarks/bench_llamacpp.py --llama-python /work/venv-llama/bin/python

Starts two llama-cpp-python servers on 127.0.0.1 on the default model's GGUF (`specscope.engine.loading.
default_model_path()`): one with `--draft_model prompt-lookup-decoding` (llama-cpp-python's prompt lookup,
`--draft_model_num_pred_tokens` drafts per step) and one without, the baseline. Then `specscope bench
--endpoint <lookup> --baseline-endpoint <plain>` at each concurrency, so each level runs on the baseline
right before the SD server; repeated `--reps` times into separate study folders. Prints each level's output
tokens/s (median, min-max), speedup and latency percentiles, and the machine load (uptime) before and after.

llama-cpp-python's server reports no acceptance (no `timings`, no /metrics): the cells say so in their
`notes` and `sd_source` stays empty. It serves one request at a time, so at concurrency > 1 requests queue
(their TTFT grows; throughput does not). Both servers are stopped by pid before the script ends.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_serve import stop_server, uptime  # noqa: E402  (the same server handling as the serve benchmark)

MODEL = "smollm2-135m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama(python: str, gguf: Path, draft: bool, args, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL, "--host", "127.0.0.1",
           "--port", str(port), "--n_threads", str(args.threads), "--n_ctx", "2048"]
    if draft:
        cmd += ["--draft_model", "prompt-lookup-decoding", "--draft_model_num_pred_tokens", str(args.k)]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    import httpx

    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llama-cpp-python server exited: see {log}")
        try:
            if httpx.get(url + "/models", timeout=2, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise SystemExit(f"llama-cpp-python server did not answer in 300 s: see {log}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-python", default="/work/venv-llama/bin/python")
    ap.add_argument("--k", type=int, default=10, help="prompt-lookup drafts per step (llama-cpp-python's default 10)")
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--workload", default="code-edit")
    ap.add_argument("-n", "--num-prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, default=None, help="keep the study folders here")
    args = ap.parse_args()

    from specscope.engine.loading import default_model_path

    gguf = default_model_path()
    load_before = uptime()
    out = args.output or Path(tempfile.mkdtemp(prefix="bench-llamacpp-"))
    procs = []
    cells: dict[str, list[dict]] = {}
    try:
        lookup, lookup_url = start_llama(args.llama_python, gguf, True, args, out / "llama-lookup.log")
        procs.append(lookup)
        plain, plain_url = start_llama(args.llama_python, gguf, False, args, out / "llama-plain.log")
        procs.append(plain)
        for rep in range(args.reps):
            folder = out / f"rep{rep}"
            cmd = [sys.executable, "-m", "specscope", "bench", "--endpoint", lookup_url, "--baseline-endpoint",
                   plain_url, "--model", MODEL, "--workload", args.workload, "-n", str(args.num_prompts),
                   "--max-new-tokens", str(args.max_new_tokens), "--concurrency", args.concurrency,
                   "--label", f"llamacpp-lookup-k{args.k}", "--proposer", "ngram", "-o", str(folder), "--json"]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"bench failed ({done.returncode}): {done.stderr.strip()}")
            for cell in json.loads(done.stdout.strip().splitlines()[-1])["cells"]:
                cells.setdefault(Path(cell["output_dir"]).name, []).append(cell)
            print(f"rep {rep}: " + ", ".join(f"{name} {c[-1]['output_throughput_tok_s']:.1f} tok/s"
                                           for name, c in cells.items()), flush=True)
    finally:
        for proc in procs:
            stop_server(proc, grace=30)
    load_after = uptime()

    print(f"\nload before: {load_before}\nload after:  {load_after}")
    print(f"llama-cpp-python 0.3.36 on {gguf.name}, {args.threads} threads; {args.num_prompts} {args.workload} prompts, "
          f"max {args.max_new_tokens} new tokens, {args.reps} reps; study folders under {out}")
    print(f"{'cell':<26} {'out tok/s median (min-max)':>28} {'TTFT p50 ms':>12} {'ITL p50 ms':>11} {'E2E p50 ms':>11}"
          f"  acceptance")
    table = {}
    for name, runs in sorted(cells.items()):
        tps = np.array([c["output_throughput_tok_s"] for c in runs])
        med = lambda key: float(np.median([c[key]["p50"] for c in runs if c.get(key)]))  # noqa: E731
        table[name] = {"tok_s": tps.tolist(), "ttft_p50_ms": med("ttft_ms"), "itl_p50_ms": med("itl_ms"),
                       "e2e_p50_ms": med("e2e_ms"), "sd_source": runs[0]["sd_source"], "notes": runs[0]["notes"],
                       "errors": sum(c["num_errors"] for c in runs)}
        print(f"{name:<26} {np.median(tps):>12.1f} ({tps.min():.1f}-{tps.max():.1f})   {table[name]['ttft_p50_ms']:>10.0f}"
              f" {table[name]['itl_p50_ms']:>10.1f} {table[name]['e2e_p50_ms']:>11.0f}  "
              f"{runs[0]['sd_source'] or 'none reported'}")
    for level in sorted({n.rsplit("-", 1)[1] for n in cells}):
        sd = [n for n in cells if n.endswith(f"-{level}") and not n.startswith("baseline")]
        base = f"baseline-{level}"
        if sd and base in cells:
            ratios = [a["output_throughput_tok_s"] / b["output_throughput_tok_s"] for a, b in zip(cells[sd[0]], cells[base])]
            print(f"speedup {level}: median {np.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")
            table[f"speedup-{level}"] = ratios
    notes = sorted({note for runs in cells.values() for c in runs for note in c["notes"]})
    for note in notes:
        print(f"note: {note}")
    print(json.dumps({"cells": table, "load_before": load_before, "load_after": load_after}))


if __name__ == "__main__":
    main()
