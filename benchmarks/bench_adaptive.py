#!/usr/bin/env python
"""Benchmark: how much of the fixed-k -> oracle gap the adaptive policies recover (simulator + engine).

    .venv/bin/python benchmarks/bench_adaptive.py TRACE.jsonl... [--fitted COST.toml] [--modes serve paper]
        [--batch-sizes 1 2 4 8 16 32 64 128] [--engine [--engine-batch-sizes 1 4 16]]

Simulator part, per trace (workload) x mode x cost model x batch size, side by side in one run:
- per proposer (e.g. ngram, draft): the best fixed-k over fixed-1..fixed-20 (its k and speedup), the
  oracle, `adaptive`, gap_recovered = (adaptive - best fixed) / (oracle - best fixed), and a flag
  where adaptive is more than 2% below the best fixed-k;
- the selector: `adaptive-combine` over both proposers vs the better single proposer's best fixed-k,
  and the oracle combine.
(Paper mode prices a combination only with an n-gram verify-fraction draft cost, as the published
simulator does; with a fitted model whose drafts are all linear the selector runs in serve mode only.)
Cost models: the `llama3.1-8b-h100` preset (its `eagle` draft cost stands for the trace's `draft`
proposer) and, with --fitted, a model fitted on this machine (`specscope profile` + `fit-cost`).
Goals (issue 7): mean gap_recovered >= 0.5, adaptive never > 2% below the best fixed-k.

Engine part (--engine): `specscope run` on the default model with `--k adaptive` vs fixed k in
{1, 2, 3, 5, 8} at each engine batch size, same prompts, the best of --engine-reps interleaved rounds;
the ratio adaptive / best fixed-k throughput (goal: >= 0.95). Slow on a CPU (minutes).

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from specscope.costs import VerifyFraction, load_cost_model
from specscope.simulator.sweep import run_sweep
from specscope.traces import read_trace

FIXED_KS = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20]
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128]
PRESET = "llama3.1-8b-h100"
TOLERANCE = 0.02


def preset_for(proposers, name=PRESET):
    """The preset, with its eagle draft cost standing for any proposer it does not price (e.g. `draft`)."""
    model = load_cost_model(name)
    drafts = dict(model.drafts)
    for p in proposers:
        drafts.setdefault(p, model.drafts["eagle"])
    return dataclasses.replace(model, drafts=drafts)


def simulate(trace, costs, mode, batch_sizes, seed=42):
    """Rows for every single proposer (fixed-k, oracle, adaptive) and the combined set (oracle, adaptive-combine)."""
    props = tuple(trace.proposers)
    sets = [(p,) for p in props]
    paper_prices_combine = any(isinstance(costs.draft(p), VerifyFraction) for p in props)  # the reference's rule
    if len(props) > 1 and (mode != "paper" or paper_prices_combine):
        sets.append(props)
    policies = [f"fixed-{k}" for k in FIXED_KS] + ["oracle", "adaptive", "adaptive-combine"]
    return run_sweep([trace], sets, policies, batch_sizes, costs, mode=mode, seed=seed)


def summarize(rows):
    """Per batch size: per proposer best fixed / oracle / adaptive / gap; the selector vs the better single."""
    out = []
    for b in sorted({r["batch_size"] for r in rows}):
        at = [r for r in rows if r["batch_size"] == b]
        singles = sorted({r["proposers"] for r in at if "," not in r["proposers"]})
        cell = {"batch_size": b, "proposers": {}}
        best_single = None
        for p in singles:
            mine = [r for r in at if r["proposers"] == p]
            fixed = [r for r in mine if r["policy"].startswith("fixed-")]
            best = max(fixed, key=lambda r: r["speedup"])
            oracle = next(r for r in mine if r["policy"] == "oracle")
            adaptive = next(r for r in mine if r["policy"] == "adaptive")
            cell["proposers"][p] = {
                "best_fixed_k": int(best["policy"][6:]), "best_fixed": best["speedup"],
                "oracle": oracle["speedup"], "adaptive": adaptive["speedup"],
                "gap_recovered": adaptive["gap_recovered"],
                "vs_best_fixed": adaptive["speedup"] / best["speedup"],
            }
            if best_single is None or best["speedup"] > best_single[1]:
                best_single = (p, best["speedup"])
        combined = [r for r in at if "," in r["proposers"]]
        if combined:
            sel = next(r for r in combined if r["policy"] == "adaptive-combine")
            orc = next(r for r in combined if r["policy"] == "oracle")
            cell["selector"] = {"proposers": sel["proposers"], "adaptive_combine": sel["speedup"],
                                "oracle_combine": orc["speedup"], "better_single": best_single[0],
                                "better_single_best_fixed": best_single[1],
                                "vs_better_single": sel["speedup"] / best_single[1],
                                "gap_recovered": sel["gap_recovered"]}
        out.append(cell)
    return out


def print_cells(title, cells):
    print(f"\n== {title}")
    print(f"{'B':>4} {'proposer':<8} {'bestK':>5} {'fixed':>7} {'oracle':>7} {'adapt':>7} {'gap_rec':>8} {'vs_fix':>7}")
    for c in cells:
        for p, v in c["proposers"].items():
            flag = "  <-- >2% below" if v["vs_best_fixed"] < 1 - TOLERANCE else ""
            gap = "-" if v["gap_recovered"] is None else f"{v['gap_recovered']:.2f}"
            print(f"{c['batch_size']:>4} {p:<8} {v['best_fixed_k']:>5} {v['best_fixed']:>7.3f} {v['oracle']:>7.3f} "
                  f"{v['adaptive']:>7.3f} {gap:>8} {v['vs_best_fixed']:>7.3f}{flag}")
        if "selector" in c:
            s = c["selector"]
            gap = "-" if s["gap_recovered"] is None else f"{s['gap_recovered']:.2f}"
            print(f"{c['batch_size']:>4} {'select':<8} {s['better_single']:>5} {s['better_single_best_fixed']:>7.3f} "
                  f"{s['oracle_combine']:>7.3f} {s['adaptive_combine']:>7.3f} {gap:>8} {s['vs_better_single']:>7.3f}")


def aggregate(results):
    gaps, ratios, sel_ratios, sel_gaps = [], [], [], []
    for res in results:
        for c in res["cells"]:
            for v in c["proposers"].values():
                if v["gap_recovered"] is not None:
                    gaps.append(v["gap_recovered"])
                ratios.append(v["vs_best_fixed"])
            if "selector" in c:
                sel_ratios.append(c["selector"]["vs_better_single"])
                if c["selector"]["gap_recovered"] is not None:
                    sel_gaps.append(c["selector"]["gap_recovered"])
    return {
        "cells": len(ratios),
        "mean_gap_recovered": float(np.mean(gaps)) if gaps else None,
        "median_gap_recovered": float(np.median(gaps)) if gaps else None,
        "min_vs_best_fixed": float(min(ratios)) if ratios else None,
        "cells_more_than_2pct_below": int(sum(r < 1 - TOLERANCE for r in ratios)),
        "selector_mean_gap_recovered": float(np.mean(sel_gaps)) if sel_gaps else None,
        "selector_min_vs_better_single": float(min(sel_ratios)) if sel_ratios else None,
        "selector_cells_below_better_single": int(sum(r < 1.0 for r in sel_ratios)),
    }


def run_engine(workload, batch_sizes, ks, num_prompts, max_new, method, cost_model, draft_model, reps=1):
    """`specscope run` for --k adaptive and each fixed k; throughput per (batch size, k): the best of `reps`
    rounds, each round running every k once (interleaved, so machine noise hits every k alike)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for b, rep, k in ((b, rep, k) for b in batch_sizes for rep in range(reps) for k in ["adaptive", *map(str, ks)]):
            cmd = [sys.executable, "-m", "specscope", "run", "--workload", workload, "--method", method,
                   "--k", k, "--batch-size", str(b), "--num-prompts", str(max(num_prompts, b)),
                   "--max-new-tokens", str(max_new), "-o", f"{tmp}/{b}-{k}-{rep}"]
            if draft_model:
                cmd += ["--draft-model", draft_model]
            if k == "adaptive" and cost_model:
                cmd += ["--cost-model", cost_model]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"engine run failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            out[(b, k)] = max(out.get((b, k), 0.0), summary["throughput_tok_s"])
            print(f"engine {method} B={b} k={k} round {rep + 1}: {summary['throughput_tok_s']:.2f} tok/s "
                  f"acc_len {summary['mean_acc_len']}", flush=True)
    rows = []
    for b in batch_sizes:
        best_k = max(ks, key=lambda k: out[(b, str(k))])
        rows.append({"batch_size": b, "adaptive": out[(b, "adaptive")], "best_fixed_k": best_k,
                     "best_fixed": out[(b, str(best_k))], "ratio": out[(b, "adaptive")] / out[(b, str(best_k))]})
        print(f"engine B={b}: adaptive {rows[-1]['adaptive']:.2f} tok/s vs best fixed k={best_k} "
              f"{rows[-1]['best_fixed']:.2f} tok/s -> ratio {rows[-1]['ratio']:.3f}")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("traces", nargs="*", type=Path)
    ap.add_argument("--fitted", help="cost model fitted on this machine (.toml)")
    ap.add_argument("--modes", nargs="+", default=["serve", "paper"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=BATCH_SIZES)
    ap.add_argument("--engine", action="store_true", help="also run the engine comparison (slow)")
    ap.add_argument("--engine-batch-sizes", nargs="+", type=int, default=[1, 4, 16])
    ap.add_argument("--engine-ks", nargs="+", type=int, default=[1, 2, 3, 5, 8])
    ap.add_argument("--engine-workload", default="code-edit")
    ap.add_argument("--engine-method", default="ngram")
    ap.add_argument("--engine-prompts", type=int, default=8, help="prompts per run (at least the batch size)")
    ap.add_argument("--engine-max-new", type=int, default=64)
    ap.add_argument("--engine-reps", type=int, default=2, help="rounds per engine configuration (best kept)")
    ap.add_argument("--draft-model", default=None)
    args = ap.parse_args(argv)

    results = []
    for path in args.traces:
        trace = read_trace(path)
        models = [preset_for(trace.proposers)]
        if args.fitted:
            models.append(load_cost_model(args.fitted))
        for costs in models:
            for mode in args.modes:
                cells = summarize(simulate(trace, costs, mode, args.batch_sizes))
                title = f"{trace.workload or path.stem} | {mode} | {costs.name}"
                print_cells(title, cells)
                results.append({"trace": str(path), "workload": trace.workload, "mode": mode,
                                "cost_model": costs.name, "cells": cells})
    summary = {}
    for name in dict.fromkeys(r["cost_model"] for r in results):  # one summary per cost model, then all
        summary[name] = aggregate([r for r in results if r["cost_model"] == name])
    if len(summary) > 1:
        summary["all"] = aggregate(results)
    for name, values in summary.items():
        print(f"\n== simulator summary: {name}")
        for key, value in values.items():
            print(f"{key:>36}: {value}")
    engine = None
    if args.engine:
        engine = run_engine(args.engine_workload, args.engine_batch_sizes, args.engine_ks, args.engine_prompts,
                            args.engine_max_new, args.engine_method, args.fitted, args.draft_model, args.engine_reps)
    print(json.dumps({"simulator": summary, "results": results, "engine": engine}))


if __name__ == "__main__":
    main()
