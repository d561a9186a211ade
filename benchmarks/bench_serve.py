"""`specscope serve` + `specscope bench` against `specscope run` on the same prompts: throughput ratio and outputs.

    python benchmarks/bench_serve.py                       # ngram k=3, levels 1,4,16, 16 code-edit prompts, 3 reps
    python benchmarks/bench_serve.py --levels 16 --reps 5 --method none

What it measures, per level L: output tokens/s of the server at concurrency L (the client's view: all prompts'
output tokens over the wall time from the first request sent to the last response read, HTTP, JSON, SSE
streaming and the client itself included) against `specscope run -b L` (the engine in process, same
settings, same prompts, the same `measure` and the same definition: output tokens over the cell's wall time).
The two alternate within each repetition (which goes first alternates too), so both see the same machine
load; medians and the min-max spread over the repetitions are printed, with `uptime` before and after.
Greedy outputs are compared request by request on every repetition.

The server is a separate process (`specscope serve`, its engine warmed up); the in-process engine is loaded
once and warmed up the same way (`EngineBackend(warm=True)`). Both use --threads. The server process is
stopped (SIGINT, by its pid) before the script ends. Machine-readable JSON is the last line.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "specscope", "serve", "--method", args.method, "--k", str(args.k), "--port", "0",
           "--max-batch-size", str(max(args.levels)), "--threads", str(args.threads),
           "--max-model-len", str(args.max_model_len)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    url = None
    ready = threading.Event()

    def read():
        nonlocal url
        for line in proc.stdout:
            if "listening on" in line and url is None:
                url = line.split("listening on ")[1].split()[0]
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(900):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, url


def stop_server(proc: subprocess.Popen, grace: float = 60) -> None:
    """Stop a server this script started: SIGINT, then kill it if it has not exited within `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def outputs(folder: Path) -> dict:
    return {r["id"]: r.get("output_token_ids") for r in
            map(json.loads, (folder / "requests.jsonl").read_text().splitlines())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="ngram")
    ap.add_argument("--k", default="3")
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workload", default="code-edit")
    ap.add_argument("-n", "--num-prompts", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--no-stream", action="store_true", help="bench without streaming")
    args = ap.parse_args()
    args.levels = sorted({int(v) for v in args.levels.split(",")})

    from specscope.cli.options import run_settings
    from specscope.study.bench import BenchOptions, Level, bench
    from specscope.study.engine_backend import EngineBackend
    from specscope.study.measure import measure
    from specscope.study.prompts import run_prompts

    load_before = uptime()
    settings = run_settings(workload=args.workload, num_prompts=args.num_prompts, seed=0,
                            max_new_tokens=args.max_new_tokens, method=args.method, k=args.k,
                            batch_size=max(args.levels), threads=args.threads, device="cpu", quant="auto")
    prompts = run_prompts(settings)
    proc, url = start_server(args)
    results = {level: {"run": [], "serve": []} for level in args.levels}
    mismatches = 0
    try:
        backend = EngineBackend(settings, warm=True)
        backend.load()
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.reps):
                for level in args.levels:
                    order = ("run", "serve") if (rep + level) % 2 == 0 else ("serve", "run")
                    got = {}
                    for kind in order:
                        folder = Path(tmp) / f"{kind}-{level}-{rep}"
                        if kind == "run":
                            summary = measure(backend, settings.replace(batch_size=level), prompts, folder)
                            results[level]["run"].append(summary["throughput_tok_s"])
                            got["run"] = outputs(folder)
                        else:
                            options = BenchOptions(endpoint=url, model="smollm2-135m", levels=(Level(level),),
                                                   label="serve", stream=not args.no_stream)
                            cell = bench(settings, options, folder, prompts).cells[0]
                            assert cell["num_errors"] == 0, cell["errors_by_kind"]
                            results[level]["serve"].append(cell["output_throughput_tok_s"])
                            got["serve"] = outputs(folder / "runs" / f"serve-c{level}")
                    differ = [rid for rid in got["run"] if got["run"][rid] != got["serve"].get(rid)]
                    mismatches += len(differ)
                    ratio = results[level]["serve"][-1] / results[level]["run"][-1]
                    print(f"rep {rep} level {level}: run {results[level]['run'][-1]:.1f} tok/s, serve "
                          f"{results[level]['serve'][-1]:.1f} tok/s, ratio {ratio:.3f}, outputs differ: {len(differ)}",
                          flush=True)
    finally:
        stop_server(proc)
    load_after = uptime()

    print(f"\nload before: {load_before}\nload after:  {load_after}")
    print(f"{args.method} k={args.k}, {len(prompts)} {args.workload} prompts, max {args.max_new_tokens} new tokens, "
          f"{args.threads} threads, {'no streaming' if args.no_stream else 'streaming'}, {args.reps} reps")
    print(f"{'level':>5} {'run tok/s (min-max)':>24} {'serve tok/s (min-max)':>24} {'ratio median (min-max)':>26}")
    table = {}
    for level in args.levels:
        run, serve = np.array(results[level]["run"]), np.array(results[level]["serve"])
        ratios = serve / run
        table[level] = {"run_tok_s": run.tolist(), "serve_tok_s": serve.tolist(), "ratios": ratios.tolist(),
                        "ratio_median": float(np.median(ratios))}
        print(f"{level:>5} {np.median(run):>9.1f} ({run.min():.1f}-{run.max():.1f})      "
              f"{np.median(serve):>9.1f} ({serve.min():.1f}-{serve.max():.1f})      "
              f"{np.median(ratios):>8.3f} ({ratios.min():.3f}-{ratios.max():.3f})")
    print(f"greedy outputs differing between serve and run: {mismatches} of {len(prompts) * args.reps * len(args.levels)}")
    print(json.dumps({"levels": table, "mismatches": mismatches, "load_before": load_before, "load_after": load_after,
                      "method": args.method, "k": args.k, "prompts": len(prompts), "threads": args.threads}))


if __name__ == "__main__":
    main()
