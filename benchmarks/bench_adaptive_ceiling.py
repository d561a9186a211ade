#!/usr/bin/env python
"""Benchmark: how much of the fixed-k -> oracle gap is within reach of a policy that knows acceptance levels.

    .venv/bin/python benchmarks/bench_adaptive_ceiling.py TRACE.jsonl... [--fitted COST.toml]
        [--batch-sizes 1 2 4 8 16 32 64 128] [--modes serve]
    .venv/bin/python benchmarks/bench_adaptive_ceiling.py benchmarks/traces/*.jsonl --fitted specscope/presets/smollm2-135m-cpu.toml

The oracle knows every step's acc_len. A deployable policy (`adaptive`, `adaptive-combine`) knows
each request's past outcomes, the n-gram's match and, for a drafter that reports it, the drafts'
confidences once drafted. This benchmark asks how far *perfect* knowledge of acceptance levels gets,
with policies that read the trace in hindsight (so never deployable; they are registered for this
run only):
- `hindsight`: each request's own tokens per step for every k (0..20), per proposer, from the
  steps its fixed-k replay takes, split by whether the proposer offers a draft there (the n-gram's
  match): as if the request's estimate had converged on its whole output at once;
- `hindsight-match`: the same per n-gram match length (drafts on offer: 1, 2-3, 4-7, 8-15, 16+);
- `hindsight-confidence`: the same per bin of the first draft's confidence at the position, known
  before deciding and for free (a real drafter pays for a draft step to learn it, so this one
  over-states what the confidence can buy where the draft's own cost matters: small batches).
Each decides as the adaptive policies do (expected tokens per step from its table, the batch's
expected tokens per second maximised under the cost model; Dinkelbach over the batch in serve
mode), one step at a time. gap_recovered is the simulator's: best fixed-k over k = 0..20 (k = 0:
plain decoding). Serve mode by default: in paper mode the oracle is priced as the published
simulator prices it (a linear draft cost on every step, even one proposing nothing) while these
policies and `adaptive` pay no draft where they propose nothing, so a gap_recovered there can exceed
1 and is no ceiling.

If even `hindsight` stays far below 0.5, the gap is not about a request's acceptance level (which
an online estimate learns) but about which positions accept, which only per-position signals tell.
Same cost models as benchmarks/bench_adaptive.py (the `llama3.1-8b-h100` preset, its eagle draft
cost standing for the trace's `draft`, and --fitted). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_adaptive import FIXED_KS, cycled, preset_for  # noqa: E402

from specscope.policy.decision import StepPrices  # noqa: E402
from specscope.costs.presets import load_cost_model  # noqa: E402
from specscope.policy import base, registry  # noqa: E402
from specscope.simulator.grid import run_grid  # noqa: E402
from specscope.formats.trace import read_trace  # noqa: E402

MATCH_EDGES = np.array([1, 2, 4, 8, 16])  # drafts on offer: 0 | 1 | 2-3 | 4-7 | 8-15 | 16+
CONFIDENCE_EDGES = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99])
UNCAPPED = 10 ** 6
HINDSIGHT = {"hindsight": "offer", "hindsight-match": "match", "hindsight-confidence": "confidence"}
DEPLOYABLE = ("adaptive", "adaptive-combine")


class Hindsight(base.Policy):
    """Expected tokens per (request, proposer, feature bucket, k) from the whole trace; goodput-maximising k."""

    batch_aware = True
    reference_pricing = False  # a step proposing nothing runs no drafter, as `adaptive`

    def __init__(self, proposers, costs, feature: str, name: str):
        super().__init__(proposers)
        self.costs, self.feature, self.name = costs, feature, name
        self._for = None  # the ReplayTrace the tables were built from

    def _build(self, rt) -> None:
        K = min(rt.source.k_max or 20, 20)
        cap = np.minimum(rt.draft_cap, UNCAPPED) if rt.draft_cap is not None else np.full(rt.acc.shape, UNCAPPED)
        if self.feature == "match":
            bucket = np.searchsorted(MATCH_EDGES, cap, side="right")
        elif self.feature == "confidence" and rt.confidence is not None:
            bucket = (cap > 0) * (1 + np.searchsorted(CONFIDENCE_EDGES, np.nan_to_num(rt.confidence, nan=1.0),
                                                       side="right"))
        else:
            bucket = (cap > 0).astype(np.int64)
        num_p, num_b = len(self.proposers), int(bucket.max()) + 1
        self.table = np.zeros((rt.num_requests, num_p, num_b, K + 1))
        known: dict[str, np.ndarray] = {}  # a request's copies (serve mode cycles the trace) share one table
        for r, request in enumerate(rt.source.requests):
            original = request.id.split("#")[0]
            if original not in known:
                rows = slice(rt.offset[r], rt.offset[r] + rt.gen_len[r])
                known[original] = _request_table(rt.acc[rows], cap[rows], bucket[rows], num_b, K)
            self.table[r] = known[original]
        self.bucket, self.request, self.cap, self.k_cap, self._for = bucket, np.repeat(
            np.arange(rt.num_requests), rt.gen_len), cap, K, rt

    def decide(self, view):
        rt = view.trace
        if self._for is not rt:
            self._build(rt)
        rows = rt.rows(view.request, view.position)
        n, num_p, K = len(rows), len(self.proposers), self.k_cap
        expected = self.table[self.request[rows][:, None], np.arange(num_p)[None, :], self.bucket[rows]]  # [n, P, K+1]
        ks = np.arange(K + 1)
        expected = np.where(ks <= np.minimum(self.cap[rows], K)[:, :, None], expected, -np.inf)
        if view.replicated:
            prices = StepPrices(self.costs, self.proposers, view.batch_kv, view.batch_size, True)
            seconds = np.stack([prices.choices(np.full((1, n), k), np.full((1, n), q))[0]
                                for q in range(num_p) for k in ks], axis=1)  # [n, P * (K + 1)]
            pick = np.argmax(expected.reshape(n, -1) / seconds, axis=1)
        else:
            pick = self._batch_pick(expected, float(view.batch_kv[0]))
        q, k = pick // (K + 1), pick % (K + 1)
        k = np.where(view.position <= 1, 0, k)  # position 1: acc_len 1 by the format's convention
        return base.Decision(k.astype(np.int64), np.where(k > 0, q, 0).astype(np.int64))

    def _batch_pick(self, expected: np.ndarray, kv: float) -> np.ndarray:
        """Per row the (proposer, k) index maximising the batch's expected tokens per second (serve pricing)."""
        n, num_p, width = expected.shape
        base, terms, marginal = StepPrices(self.costs, self.proposers, kv, 1, False)._serve_table(n, width)
        cost = np.broadcast_to(marginal[None, :, :width], expected.shape).reshape(n, -1)
        ks, rows = np.arange(width), np.arange(n)
        best, best_rate = np.zeros(n, dtype=np.int64), -np.inf
        for subset in range(2 ** num_p):  # which proposers may run (each pays its fixed cost once)
            allowed = np.array([(subset >> q) & 1 for q in range(num_p)], dtype=bool)
            fixed = base + sum(t.fixed for t, a in zip(terms, allowed) if a)
            tokens = np.where(allowed[None, :, None] | (ks == 0), expected, -np.inf).reshape(n, -1)
            rate = n / fixed
            for _ in range(50):  # Dinkelbach: sum(tokens) / (fixed + sum(cost)) rises to its optimum
                pick = np.argmax(tokens - rate * cost, axis=1)
                new = tokens[rows, pick].sum() / (fixed + cost[rows, pick].sum())
                if new <= rate * (1 + 1e-12):
                    break
                rate = new
            if rate > best_rate:
                best, best_rate = np.argmax(tokens - rate * cost, axis=1), rate
        return best


def _request_table(acc: np.ndarray, cap: np.ndarray, bucket: np.ndarray, num_b: int, K: int) -> np.ndarray:
    """[P, buckets, K + 1] one request's tokens per step with k drafts, averaged over the steps its fixed-k
    trajectory takes (not over all positions: a long accepted run is crossed in one step, so the positions a
    policy stands at accept less than the average position), split by the bucket of each step's position; a
    bucket that trajectory never stands at takes its overall mean."""
    G, num_p = acc.shape
    out = np.zeros((num_p, num_b, K + 1))
    for q in range(num_p):
        for k in range(K + 1):
            sums, counts, pos = np.zeros(num_b), np.zeros(num_b), 1
            while pos < G:  # a step at position pos reads acc[pos - 1]; position 1 proposes nothing
                row = pos - 1
                drafts = 0 if pos <= 1 else min(k, int(cap[row, q]))
                tokens = min(int(acc[row, q]), drafts + 1)
                sums[bucket[row, q]] += tokens
                counts[bucket[row, q]] += 1
                pos += tokens
            overall = sums.sum() / max(counts.sum(), 1.0)
            out[q, :, k] = np.where(counts > 0, sums / np.maximum(counts, 1.0), overall)
    return out


def register() -> None:
    """Add the hindsight policies to the registry for this process."""
    for name, feature in HINDSIGHT.items():
        registry.POLICIES[name] = registry.PolicySpec(
            re.escape(name), f"{name} (benchmark only: reads the trace in hindsight)",
            lambda props, m, costs, f=feature, n=name: Hindsight(props, costs, f, n),
            lambda props, m: True, needs_costs=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("traces", nargs="+", type=Path)
    ap.add_argument("--fitted", help="cost model fitted on this machine (.toml)")
    ap.add_argument("--modes", nargs="+", default=["serve"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--serve-queue", type=int, default=4, help="as benchmarks/bench_adaptive.py")
    args = ap.parse_args(argv)
    register()
    named = [f"fixed-{k}" for k in FIXED_KS] + ["oracle", *DEPLOYABLE, *HINDSIGHT]
    gaps, cells = defaultdict(list), []
    for path in args.traces:
        trace = read_trace(path)
        props = tuple(trace.proposers)
        for costs in [preset_for(props)] + ([load_cost_model(args.fitted)] if args.fitted else []):
            for mode in args.modes:
                sets = [(p,) for p in props] + ([props] if mode == "serve" and len(props) > 1 else [])
                print(f"\n== {trace.workload} | {mode} | {costs.name}: gap_recovered per policy")
                for b in args.batch_sizes:
                    replayed = cycled(trace, args.serve_queue * b) if mode == "serve" else trace
                    rows = run_grid([replayed], sets, named, [b], costs, mode=mode)
                    for pset in dict.fromkeys(r["proposers"] for r in rows):
                        mine = {r["policy"]: r["gap_recovered"] for r in rows if r["proposers"] == pset}
                        deployable = "adaptive-combine" if "," in pset else "adaptive"
                        shown = {p: mine.get(p) for p in (deployable, *HINDSIGHT)}
                        cells.append({"workload": trace.workload, "mode": mode, "cost_model": costs.name,
                                      "batch_size": b, "proposers": pset, "gap_recovered": shown})
                        for policy, gap in shown.items():
                            if gap is not None:
                                gaps[(costs.name, mode, pset, policy)].append(gap)
                        print(f"B={b:<4} {pset:<12} " + "  ".join(
                            f"{p} {'-' if g is None else f'{g:6.2f}'}" for p, g in shown.items()), flush=True)
    print("\n== mean gap_recovered (cells with a gap)")
    summary = []
    for (model, mode, pset, policy), values in sorted(gaps.items()):
        summary.append({"cost_model": model, "mode": mode, "proposers": pset, "policy": policy,
                        "mean_gap_recovered": float(np.mean(values)), "cells": len(values)})
        print(f"{model:<18} {mode:<6} {pset:<12} {policy:<21} {np.mean(values):7.3f}  ({len(values)} cells)")
    print(json.dumps({"summary": summary, "cells": cells}))


if __name__ == "__main__":
    main()
