"""Engine speed benchmark: speculative decoding vs plain decoding, and vs transformers' prompt lookup.

Usage:  .venv/bin/python benchmarks/bench_engine.py [--threads 2] [--quick] [--max-new-tokens 128]

Default model (SmolLM2-135M-Instruct), greedy, same prompts and thread count throughout.

Part A (one process, configurations interleaved prompt by prompt so machine noise hits them alike):
  n-gram SD (k = 5) through specscope's engine at batch size 1, vs transformers'
  `generate(prompt_lookup_num_tokens=5)` on the same code-editing prompts and the same output lengths
  (min_new_tokens = max_new_tokens = our output length), plus both plain decoders for reference.
  Goal: ours_ngram / hf_prompt_lookup >= 2.

Part B (one `specscope run` subprocess per cell, so each reports its own peak memory): throughput of
  --method none / ngram / draft at batch sizes 1, 4 and 16 on code-edit prompts; speedup = method
  tok/s / none tok/s at the same batch size; mean acceptance length; engine overhead share of step
  time (goal <= 10%); peak RSS per method.

Prints tables; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def part_a(args) -> dict:
    from transformers import AutoModelForCausalLM

    from specscope.engine.engine import Engine
    from specscope.engine.loading import default_model_path, load_model
    from specscope.engine.proposers import build_proposer
    from specscope.settings import RunSettings
    from specscope.study.engine_backend import build_requests, stop_token_ids
    from specscope.study.prompts import run_prompts

    target, tokenizer = load_model(None, device=torch.device("cpu"))
    path = default_model_path()
    hf = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    prompts = run_prompts(RunSettings(workload="code-edit", num_prompts=args.part_a_prompts, seed=args.seed))
    requests = build_requests(prompts, tokenizer, None, args.max_new_tokens)
    stop = stop_token_ids(target, tokenizer)

    def ours(method, request):
        settings = RunSettings.build(method=method, k=5, batch_size=1, max_new_tokens=args.max_new_tokens)
        engine = Engine(target, build_proposer(method, settings, target=target), settings, stop)
        start = time.perf_counter()
        (seq,) = list(engine.generate([request]))
        return time.perf_counter() - start, seq.output.tolist()

    def theirs(request, n, lookup):
        ids = torch.tensor([request.prompt_token_ids])
        extra = {"prompt_lookup_num_tokens": 5} if lookup else {}
        start = time.perf_counter()
        with torch.inference_mode():
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, pad_token_id=tokenizer.eos_token_id, **extra)
        return time.perf_counter() - start, out[0, ids.shape[1]:].tolist()

    ours("ngram", requests[0])  # warm-up
    seconds = dict.fromkeys(("ours_none", "ours_ngram_k5", "hf_generate", "hf_prompt_lookup_5"), 0.0)
    tokens, same = 0, 0
    for request in requests:
        dt, plain = ours("none", request)
        seconds["ours_none"] += dt
        dt, sd = ours("ngram", request)
        seconds["ours_ngram_k5"] += dt
        n = len(sd)
        seconds["hf_generate"] += theirs(request, n, False)[0]
        dt, hf_tokens = theirs(request, n, True)
        seconds["hf_prompt_lookup_5"] += dt
        tokens += n
        same += hf_tokens == sd == plain
    tps = {name: tokens / s for name, s in seconds.items()}
    return {
        "prompts": len(requests),
        "tokens": tokens,
        "weight_format": getattr(target, "weight_format", "dense"),
        "tokens_per_s": tps,
        "ngram_vs_hf_prompt_lookup": tps["ours_ngram_k5"] / tps["hf_prompt_lookup_5"],
        "ngram_vs_ours_none": tps["ours_ngram_k5"] / tps["ours_none"],
        "hf_prompt_lookup_vs_hf_generate": tps["hf_prompt_lookup_5"] / tps["hf_generate"],
        "outputs_identical": f"{same}/{len(requests)}",
    }


def run_cell(args, method: str, batch_size: int, num_prompts: int, out: Path) -> dict:
    k = {"none": 0, "ngram": args.ngram_k, "draft": args.draft_k}[method]
    cmd = [sys.executable, "-m", "specscope", "run", "--workload", args.workload, "-n", str(num_prompts),
           "--seed", str(args.seed), "--method", method, "--k", str(k), "--batch-size", str(batch_size),
           "--max-new-tokens", str(args.max_new_tokens), "--threads", str(args.threads), "-o", str(out)]
    if method == "draft":
        cmd += ["--draft-model", args.draft_model]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def part_b(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size in args.batch_sizes:
            num_prompts = max(args.prompts_per_batch * batch_size, args.min_prompts)
            cells = {m: run_cell(args, m, batch_size, num_prompts, Path(tmp) / f"{m}-{batch_size}") for m in args.methods}
            base = cells["none"]["throughput_tok_s"] if "none" in cells else None
            for method, s in cells.items():
                bd = s["time_breakdown_s"]
                total = sum(bd.values())
                rows.append({
                    "batch_size": batch_size, "method": s["method"], "k": s["k"], "prompts": num_prompts,
                    "tok_s": s["throughput_tok_s"], "speedup": s["throughput_tok_s"] / base if base else None,
                    "mean_acc_len": s["mean_acc_len"], "acceptance_rate": s["acceptance_rate"],
                    "overhead_share": bd["overhead"] / total, "outside_forwards_share": (bd["overhead"] + bd["sample"]) / total,
                    "draft_share": bd["draft"] / total, "peak_rss_mb": s["peak_rss_mb"],
                    "kv_cache_mb": s["kv_cache_mb"], "proposer_mb": s["proposer_mb"],
                })
                r = rows[-1]
                print(f"{batch_size:>3} {r['method']:<16} {r['tok_s']:8.1f} {_f(r['speedup'], '7.2f')}x "
                      f"{_f(r['mean_acc_len'], '8.2f')} {_f(r['acceptance_rate'], '7.2f')} {r['draft_share']:7.0%} "
                      f"{r['overhead_share']:8.1%} {r['outside_forwards_share']:8.1%} {r['peak_rss_mb']:9.0f}", flush=True)
    return rows


def _f(value, spec):
    return "-".rjust(int(spec.split(".")[0])) if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--workload", default="code-edit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part-a-prompts", type=int, default=4)
    parser.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--methods", type=lambda s: s.split(","), default=["none", "ngram", "draft"])
    parser.add_argument("--prompts-per-batch", type=int, default=2, help="prompts = this x batch size (>= --min-prompts)")
    parser.add_argument("--min-prompts", type=int, default=4)
    parser.add_argument("--ngram-k", type=int, default=5)
    parser.add_argument("--draft-k", type=int, default=3)
    parser.add_argument("--draft-model", default="self:24")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 prompts in part A, 64 new tokens, batch sizes 1,4")
    args = parser.parse_args()
    if args.quick:
        args.part_a_prompts, args.max_new_tokens, args.batch_sizes = 2, 64, [1, 4]
    torch.set_num_threads(args.threads)
    result = {"benchmark": "engine", "threads": args.threads, "max_new_tokens": args.max_new_tokens,
              "load_avg_start": os.getloadavg()[0]}

    if not args.skip_a:
        a = part_a(args)
        print(f"# Part A: code-edit, batch 1, {a['prompts']} prompts, {a['tokens']} tokens, weights {a['weight_format']}")
        for name, value in a["tokens_per_s"].items():
            print(f"{name:<22} {value:8.1f} tok/s")
        print(f"ours ngram k=5 / hf prompt lookup 5 : {a['ngram_vs_hf_prompt_lookup']:.2f}x  (goal >= 2)")
        print(f"ours ngram k=5 / ours none          : {a['ngram_vs_ours_none']:.2f}x")
        print(f"hf prompt lookup / hf generate      : {a['hf_prompt_lookup_vs_hf_generate']:.2f}x")
        print(f"identical outputs (ours none = ours ngram = hf lookup): {a['outputs_identical']}", flush=True)
        result["part_a"] = a
    if not args.skip_b:
        print(f"# Part B: {args.workload}, {args.max_new_tokens} new tokens, draft {args.draft_model}")
        print(f"{'B':>3} {'method':<16} {'tok/s':>8} {'speedup':>8} {'acc_len':>8} {'acc_rt':>7} {'draft':>7} "
              f"{'overhead':>8} {'non-fwd':>8} {'peak MiB':>9}")
        result["part_b"] = part_b(args)
    result["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
