#!/usr/bin/env python
"""Write specscope/data/demo_trace.jsonl: the small SYNTHETIC trace that `specscope demo` simulates.

    .venv/bin/python scripts/make_demo_trace.py [-o specscope/data/demo_trace.jsonl] [--requests 64] [--seed 7]

SYNTHETIC: no model produced these tokens or acceptance lengths. The generator
(`specscope.simulator.synthetic`) imitates the structure of published traces — EAGLE-like acceptance
runs with per-request acceptance rates, n-gram copy spans that read v, v-1, ..., 1 — so the demo
exercises the real simulator end to end before the engine records real traces
(`specscope trace`), which will replace this file. The header says `"synthetic": true`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from specscope.simulator.synthetic import synthetic_trace
from specscope.traces import write_trace

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "specscope" / "data" / "demo_trace.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    trace = synthetic_trace(
        num_requests=args.requests,
        seed=args.seed,
        prompt_range=(40, 300),
        output_range=(60, 260),
        workload="synthetic-demo",
    )
    trace.extra["note"] = "SYNTHETIC demo trace written by scripts/make_demo_trace.py; not measured on any model"
    write_trace(args.output, trace)
    print(f"wrote {len(trace.requests)} synthetic requests to {args.output}")


if __name__ == "__main__":
    main()
