#!/usr/bin/env python
"""Benchmark: how much of the fixed-k -> oracle gap the adaptive policies recover (simulator + engine).

    .venv/bin/python benchmarks/bench_adaptive.py TRACE.jsonl... [--fitted COST.toml] [--modes serve paper]
        [--batch-sizes 1 2 4 8 16 32 64 128] [--engine [--engine-batch-sizes 1 4 16]]
    .venv/bin/python benchmarks/bench_adaptive.py benchmarks/traces/*.jsonl --fitted specscope/presets/smollm2-135m-cpu.toml

benchmarks/traces/ holds the traces the issue's numbers come from, collected on the 2-core reference
machine (every bundled prompt of the workload, ~2 min each):
    specscope trace --workload W --proposers ngram,draft --draft-model self:24 --k-max 20 \
        --max-new-tokens 256 --threads 1 -o benchmarks/traces/W.jsonl
They record the draft's confidence per position (`draft_confidence`), which the adaptive policies
use to stop the draft's chains mid-step (benchmarks/bench_confidence.py measures that signal).

Simulator part, per trace (workload) x mode x cost model x batch size, side by side in one run
(serve mode replays at least --serve-queue x B requests at batch size B, cycling the trace's own, so
the batch is refilled as a server's is instead of draining at once):
- per proposer (e.g. ngram, draft): the best fixed-k over fixed-0..fixed-20 (its k and speedup; k = 0
  is plain decoding, speedup 1, the best fixed choice where every k loses: a policy that stops
  speculating there recovers nothing, and a cell whose oracle loses too has no gap), the oracle,
  `adaptive`, gap_recovered = (adaptive - best fixed) / (oracle - best fixed), and a flag where
  adaptive is more than 2% below the best fixed-k;
- the selector: `adaptive-combine` over both proposers vs the better single proposer's best fixed-k,
  and the oracle combine; the summary also counts the cells where the two are complementary (the
  combined oracle at least 5% above the better single oracle) and where the selector loses there.
(Paper mode prices a combination only with an n-gram verify-fraction draft cost, as the published
simulator does; with a fitted model whose drafts are all linear the selector runs in serve mode only.)
Cost models: the `llama3.1-8b-h100` preset (its `eagle` draft cost stands for the trace's `draft`
proposer) and, with --fitted, a model fitted on this machine (`specscope profile` + `fit-cost`).
Goals (issue 7): mean gap_recovered >= 0.5, adaptive never > 2% below the best fixed-k, the selector
above the better single proposer wherever the two are complementary.

Engine part (--engine): the engine on the default model (loaded once, --engine-threads torch
threads, default 1) with `--k adaptive` vs fixed k in {1, 2, 3, 5, 8} at each engine batch size,
same prompts, --engine-reps interleaved rounds, each configuration's median; the ratio adaptive /
best fixed-k decode-phase throughput (goal: >= 0.95), end to end beside it. `--k adaptive` uses a
cost model fitted here first (`specscope profile` + `fit-cost` at the same thread count) unless
--engine-cost-model names one. Slow on a CPU (tens of minutes).

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from specscope.costs.model import VerifyFraction
from specscope.costs.presets import load_cost_model
from specscope.simulator.grid import run_grid
from specscope.formats.trace import read_trace

FIXED_KS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20]  # 0: plain decoding, the fixed choice where every k loses
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128]
PRESET = "llama3.1-8b-h100"
TOLERANCE = 0.02
COMPLEMENTARY = 1.05  # proposers are complementary where the combined oracle beats the best single oracle by 5%


def preset_for(proposers, name=PRESET):
    """The preset, with its eagle draft cost standing for any proposer it does not price (e.g. `draft`)."""
    model = load_cost_model(name)
    drafts = dict(model.drafts)
    for p in proposers:
        drafts.setdefault(p, model.drafts["eagle"])
    return dataclasses.replace(model, drafts=drafts)


def simulate(trace, costs, mode, batch_sizes, seed=42, queue=0):
    """Rows for every single proposer (fixed-k, oracle, adaptive) and the combined set (oracle, adaptive-combine).

    queue > 0 (serve mode): batch size B runs on the trace's requests cycled to at least queue x B
    requests (see `cycled`), so the batch is refilled from a queue instead of draining at once.
    """
    props = tuple(trace.proposers)
    sets = [(p,) for p in props]
    paper_prices_combine = any(isinstance(costs.draft(p), VerifyFraction) for p in props)  # the reference's rule
    if len(props) > 1 and (mode != "paper" or paper_prices_combine):
        sets.append(props)
    policies = [f"fixed-{k}" for k in FIXED_KS] + ["oracle", "adaptive", "adaptive-combine"]
    if mode != "serve" or queue <= 0:
        return run_grid([trace], sets, policies, batch_sizes, costs, mode=mode, seed=seed)
    rows = []
    for b in batch_sizes:
        rows += run_grid([cycled(trace, queue * b)], sets, policies, [b], costs, mode=mode, seed=seed)
    return rows


def cycled(trace, at_least: int):
    """The trace with its requests repeated in order (ids `<id>#<copy>`) until there are `at_least` of them.

    A serving engine runs far more requests than one batch holds; a trace of a few dozen replayed at
    batch size 128 would be one batch draining at once, where the slowest request sets the time.
    """
    copies = -(-at_least // len(trace.requests))
    if copies <= 1:
        return trace
    requests = [dataclasses.replace(r, id=f"{r.id}#{c}") for c in range(copies) for r in trace.requests]
    return dataclasses.replace(trace, requests=requests)


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
    gaps, ratios, sel_ratios, sel_gaps, comp_ratios = [], [], [], [], []
    for res in results:
        for c in res["cells"]:
            for v in c["proposers"].values():
                if v["gap_recovered"] is not None:
                    gaps.append(v["gap_recovered"])
                ratios.append(v["vs_best_fixed"])
            if "selector" in c:
                sel_ratios.append(c["selector"]["vs_better_single"])
                if complementary(c):
                    comp_ratios.append(c["selector"]["vs_better_single"])
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
        "selector_complementary_cells": len(comp_ratios),
        "selector_complementary_below_better_single": int(sum(r < 1.0 for r in comp_ratios)),
        "selector_complementary_min_vs_better_single": float(min(comp_ratios)) if comp_ratios else None,
    }


def complementary(cell) -> bool:
    """The combined oracle beats every single proposer's oracle by COMPLEMENTARY (combining can pay)."""
    best_single_oracle = max(v["oracle"] for v in cell["proposers"].values())
    return cell["selector"]["oracle_combine"] >= COMPLEMENTARY * best_single_oracle


def fit_engine_costs(methods, draft_model, threads, folder: Path) -> str:
    """Profile this machine at `threads` torch threads (`specscope profile` + `fit-cost`); the .toml's path."""
    profile, fitted = folder / "profile.csv", folder / "cost.toml"
    cmd = [sys.executable, "-m", "specscope", "profile", "--proposers", ",".join(methods), "--threads", str(threads),
           "-o", str(profile)] + (["--draft-model", draft_model] if draft_model else [])
    for step in (cmd, [sys.executable, "-m", "specscope", "fit-cost", str(profile), "-o", str(fitted)]):
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(step)} failed:\n{proc.stderr[-2000:]}")
    print(f"engine: cost model fitted at {threads} thread(s): {fitted}", flush=True)
    return str(fitted)


def run_engine(workload, batch_sizes, ks, num_prompts, max_new, methods, cost_model, draft_model, reps=3, threads=1):
    """The engine (one process, the target loaded once) with `--k adaptive` and each fixed k of each method.

    Every round runs every configuration once, interleaved, so slow spells of the machine hit them alike;
    each configuration is scored by its median over the rounds (a best-of over many fixed k would favour
    them: the maximum of more noisy samples). Scored on decode-phase throughput (the steps that ran no
    prompt: the prompts' forward is the same for every k and, at these lengths, as long as the decoding);
    end to end beside it. One untimed warm-up run first. `threads` torch threads (1 keeps run-to-run
    noise near 1% on a shared 2-core machine, against 10-20% with 2); without `cost_model` this machine
    is profiled at that thread count and a cost model fitted for `--k adaptive`.
    """
    from specscope.settings import AdaptiveSettings, RunSettings
    from specscope.study.engine_backend import EngineBackend
    from specscope.study.measure import measure
    from specscope.study.prompts import run_prompts

    decode, total = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        cost_source = cost_model or fit_engine_costs(methods, draft_model, threads, Path(tmp))
        costs = load_cost_model(cost_source)
        base = RunSettings.build(threads=threads, workload=workload, max_new_tokens=max_new, draft_model=draft_model)
        backend = EngineBackend(base)
        backend.load()
        configs = [("adaptive", ",".join(methods), None)] + [(f"{m} k={k}", m, k) for m in methods for k in ks]

        prompts = {b: run_prompts(base.replace(num_prompts=max(num_prompts, b))) for b in batch_sizes}

        def one(b, label, method, k):
            adaptive = AdaptiveSettings(cost_model=str(cost_source)) if label == "adaptive" else None
            settings = base.replace(method=method, k=k if k is not None else base.proposer.k, batch_size=b)
            return measure(backend, dataclasses.replace(settings, adaptive=adaptive), prompts[b], Path(tmp) / "run")

        one(batch_sizes[0], *configs[0])  # warm-up
        for rep in range(reps):
            for b in batch_sizes:
                for label, method, k in configs:
                    summary = one(b, label, method, k)
                    decode.setdefault((b, label), []).append(summary["decode_throughput_tok_s"])
                    total.setdefault((b, label), []).append(summary["throughput_tok_s"])
                    print(f"engine round {rep + 1} B={b} {label}: decode {summary['decode_throughput_tok_s']:.1f} "
                          f"tok/s, end to end {summary['throughput_tok_s']:.1f} tok/s, acc_len "
                          f"{summary['mean_acc_len']:.2f}, proposed {summary['proposed_tokens']}", flush=True)
    med = lambda table, key: float(np.median(table[key]))
    rows = []
    for b in batch_sizes:
        fixed = [label for label, _, _ in configs[1:]]
        best = max(fixed, key=lambda label: med(decode, (b, label)))
        best_total = max(fixed, key=lambda label: med(total, (b, label)))
        per_round = [a / max(decode[(b, f)][r] for f in fixed) for r, a in enumerate(decode[(b, "adaptive")])]
        row = {"batch_size": b, "adaptive_decode": med(decode, (b, "adaptive")), "best_fixed": best,
               "best_fixed_decode": med(decode, (b, best)),
               "ratio": med(decode, (b, "adaptive")) / med(decode, (b, best)),
               "ratio_per_round_vs_that_rounds_best": per_round,
               "adaptive_end_to_end": med(total, (b, "adaptive")), "best_fixed_end_to_end": best_total,
               "ratio_end_to_end": med(total, (b, "adaptive")) / med(total, (b, best_total)), "threads": threads,
               "cost_model": costs.name}
        rows.append(row)
        print(f"engine B={b}: decode adaptive {row['adaptive_decode']:.1f} tok/s vs best fixed ({best}) "
              f"{row['best_fixed_decode']:.1f} -> ratio {row['ratio']:.3f} (per round vs that round's best: "
              f"{', '.join(f'{x:.3f}' for x in per_round)}); end to end ratio {row['ratio_end_to_end']:.3f} "
              f"(best {best_total})")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("traces", nargs="*", type=Path)
    ap.add_argument("--fitted", help="cost model fitted on this machine (.toml)")
    ap.add_argument("--modes", nargs="+", default=["serve", "paper"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=BATCH_SIZES)
    ap.add_argument("--serve-queue", type=int, default=4,
                    help="serve mode: replay at least this many x B requests at batch size B (the trace's cycled)")
    ap.add_argument("--engine", action="store_true", help="also run the engine comparison (slow)")
    ap.add_argument("--engine-batch-sizes", nargs="+", type=int, default=[1, 4, 16])
    ap.add_argument("--engine-ks", nargs="+", type=int, default=[1, 2, 3, 5, 8])
    ap.add_argument("--engine-workload", default="code-edit")
    ap.add_argument("--engine-methods", nargs="+", default=["ngram"],
                    help="proposers: adaptive picks among them; fixed k runs each alone")
    ap.add_argument("--engine-prompts", type=int, default=8, help="prompts per run (at least the batch size)")
    ap.add_argument("--engine-max-new", type=int, default=64)
    ap.add_argument("--engine-reps", type=int, default=3, help="rounds (each configuration's median is scored)")
    ap.add_argument("--engine-threads", type=int, default=1, help="torch threads of the engine runs")
    ap.add_argument("--engine-cost-model", default=None,
                    help="cost model of --k adaptive (default: profile this machine at --engine-threads and fit one)")
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
                cells = summarize(simulate(trace, costs, mode, args.batch_sizes, queue=args.serve_queue))
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
                            args.engine_max_new, args.engine_methods, args.engine_cost_model, args.draft_model,
                            args.engine_reps, args.engine_threads)
    print(json.dumps({"simulator": summary, "results": results, "engine": engine}))


if __name__ == "__main__":
    main()
