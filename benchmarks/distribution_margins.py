"""Distribution tests over many seeds: how far correct code stays below each test's threshold, and each test's power.

Runs every check of tests/engine/test_distribution.py (chain and tree rejection sampling) and
tests/engine/test_distribution_e2e.py (sampled SD through the engine, each proposer; for `--k adaptive`
also the second-draft check, `test_adaptive_second_drafts_match_target`, on the same run) with seeds
0..N-1 on the current code. Per test it prints the number of chi-square checks, the stated power (the
smallest over its checks, from the exact distributions), the largest chi-square / critical value over
all seeds and checks (the margin: below 1 passes; the test flakes if it ever reaches 1) and the smallest
p-value seen (the threshold is 1e-6).

Usage:  python benchmarks/distribution_margins.py [--seeds 20] [--first-seed 0] [--only unit|e2e]
                                                 [--methods M ...] [--json]
The last line is JSON with --json. About 3 minutes per seed on 2 shared cores (the e2e part).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # tests/engine is a package: `engine.test_distribution`

import torch  # noqa: E402

from stats_helpers import ALPHA, chi2_tail, detectable_distance, pooled_cells  # noqa: E402


def summarize(name: str, checks: int, power: str, ratios: list[float], pvalues: list[float], seconds: float) -> dict:
    return {"test": name, "checks": checks, "power": power, "max_chi2_over_critical": round(max(ratios), 4),
            "min_p_value": float(f"{min(pvalues):.3g}"), "seconds": round(seconds, 1)}


def unit_tests(seeds: range) -> list[dict]:
    from engine import test_distribution as t

    out = []
    groups = [(f"test_chain_ragged_batches_per_position_drafts_match_target[{mode}]",
               lambda seed, mode=mode: t.chain_results(mode, seed)) for mode in ("sampled", "one-hot")]
    groups += [(f"test_tree_every_node_and_leaf_bonus_match_target[{name}]",
                lambda seed, name=name: t.tree_results(name, seed)) for name in t.SCENARIOS]
    for name, run in groups:
        started, ratios, pvalues, short = time.perf_counter(), [], [], 0
        for seed in seeds:
            specs, rows = run(seed)
            short += sum(r.n < spec.n_min for spec, r in zip(specs, rows))  # fewer visits than the test guarantees
            ratios += [r.stat / r.crit for r in rows]
            pvalues += [chi2_tail(r.stat, r.df) for r in rows]
        stated = [p for spec in specs for _, p in spec.powers()]
        power = f">= {min(stated):.3f} on {len(stated)} statements" if stated else "-"
        if "tree" in name:  # the per-node statement: the best scenario of the mode (test_every_check_has_power)
            power = f"per check {min(stated):.3f}..{max(stated):.3f}; per node and mode >= 0.99 (see below)"
        if short:
            ratios.append(float("inf"))  # a visit count below the guarantee fails the test like a chi-square would
        out.append(summarize(name, len(rows), power, ratios, pvalues, time.perf_counter() - started))
        print(f"{name}: done", file=sys.stderr, flush=True)
    return out


def tree_node_power() -> list[str]:
    """Per tree node and mode: the best power over that mode's scenarios (what test_every_check_has_power asserts)."""
    from engine import test_distribution as t

    best = {}
    for s in t.SCENARIOS.values():
        mode = "deterministic" if s is t.DET else "sampled"
        for spec in t.tree_specs(s):
            node = spec.name.split(" node ")[1].split()[0]
            for label, p in spec.powers():
                if p > best.get((mode, node), ("", -1.0))[1]:
                    best[mode, node] = (f"{label} (n >= {spec.n_min} in '{s.name}')", p)
    return [f"  {mode:13s} node {node:>2s}: power {p:.4f} against {label}" for (mode, node), (label, p) in sorted(best.items())]


def e2e_tests(seeds: range, methods: list[str] | None = None) -> list[dict]:
    from engine import test_distribution_e2e as e
    from small_vocab import exact_marginals, fit_heads, one_thread, small_vocab_model

    out = []
    with one_thread(), tempfile.TemporaryDirectory() as tmp:
        model = small_vocab_model()
        heads = fit_heads(model, Path(tmp))
        marginals = exact_marginals(model, e.PROMPT, e.TEMPERATURE, e.TOP_P, depth=e.POSITIONS)
        dfs = [len(pooled_cells(e.REQUESTS, marginals[j])) - 1 for j in range(e.POSITIONS)]
        distance = max(detectable_distance(e.REQUESTS, df) for df in dfs)
        for method in methods or e.METHODS:
            started, ratios, pvalues = time.perf_counter(), [], []
            second, second_p, second_rows = [], [], []
            for seed in seeds:
                tokens, _, seqs = e.run_engine(model, method, seed, heads)
                rows = e.marginal_rows(tokens, marginals)
                ratios += [stat / crit for _, _, stat, _, crit in rows]
                pvalues += [chi2_tail(stat, df) for _, _, stat, df, _ in rows]
                if method in e.ADAPTIVE:
                    n, stat, df, crit = e.second_draft_result(model, seqs)
                    # fewer rows than the test guarantees fails it like a chi-square would
                    second.append(stat / crit if n >= e.SECOND_DRAFT_ROWS[method] else float("inf"))
                    second_p.append(chi2_tail(stat, df))
                    second_rows.append(n)
            seconds = time.perf_counter() - started
            out.append(summarize(f"test_sampled_sd_matches_plain_sampling_at_every_position[{method}]", len(rows),
                                 f"0.99 against distance >= {distance:.4f}", ratios, pvalues, seconds))
            if method in e.ADAPTIVE:
                n_min = e.SECOND_DRAFT_ROWS[method]
                power = (f"0.99 against distance >= {e.SECOND_DRAFT_DISTANCE[method]} (rows >= {n_min}; "
                         f"seen {min(second_rows)}..{max(second_rows)})")
                out.append(summarize(f"test_adaptive_second_drafts_match_target[{method}]", 1, power, second, second_p,
                                     seconds))
            print(f"{method}: done", file=sys.stderr, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--only", choices=("unit", "e2e"))
    parser.add_argument("--methods", nargs="*", help="e2e methods (default: all of the test's METHODS)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows = []
    if args.only in (None, "unit"):
        rows += unit_tests(seeds)
    if args.only in (None, "e2e"):
        rows += e2e_tests(seeds, args.methods)
    print(f"seeds {seeds.start}..{seeds.stop - 1}, threshold p = {ALPHA:g} per check")
    print(f"{'test':75s} {'checks':>6s} {'max chi2/crit':>13s} {'min p':>9s}  power")
    for r in rows:
        print(f"{r['test']:75s} {r['checks']:6d} {r['max_chi2_over_critical']:13.3f} {r['min_p_value']:9.2g}  {r['power']}")
    if args.only in (None, "unit"):
        print("tree power per node (best scenario of the mode):")
        print("\n".join(tree_node_power()))
    worst = max(r["max_chi2_over_critical"] for r in rows)
    print(f"largest chi-square / critical value over all tests and seeds: {worst:.3f} "
          f"({'no flake' if worst < 1 else 'FLAKED'})")
    if args.json:
        print(json.dumps({"seeds": [seeds.start, seeds.stop - 1], "alpha": ALPHA, "tests": rows}))
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
