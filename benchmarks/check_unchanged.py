"""Behaviour fingerprint of specscope, for refactors that must not change what it computes.

    python benchmarks/check_unchanged.py --save before.json        # on the old tree
    python benchmarks/check_unchanged.py --compare before.json     # on the new tree: lists what differs

What it fingerprints, through the command line only (the CLI is the stable surface):
- `specscope simulate` on the shipped traces (benchmarks/traces/*.jsonl): every policy family
  (fixed-k, oracle, adaptive, adaptive-combine), serve and paper mode, under the H100 preset and the
  CPU preset; the sha256 of each CSV with its timing-free columns (every column is a pure function of
  trace and cost model, so the whole file is hashed) — the columns the CSV had when the fingerprints were
  first saved (`FINGERPRINT_COLUMNS`): a column added later is new output, not a change. Serve mode
  resamples a batch size larger than the trace (issue 25); it is turned off here (`--num-requests 0`) so
  that the replay of the trace's own requests is compared;
- `specscope run` on the default model, greedy, one thread: every method (none, ngram, draft, eagle,
  eagle3, mtp, a draft tree, adaptive n-gram and adaptive ngram+draft under the shipped CPU preset) at
  batch 1 and 4; the sha256 of the output token ids of each request, and of the adaptive runs'
  choices (which depend only on the engine's decisions, not on its timings, except where the engine
  prices with its own measured step times: those runs are marked `timed` and reported, not failed).

Prints one line per fingerprint that differs, then a count; exits 1 when any untimed one differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "specscope"]
TRACES = sorted((ROOT / "benchmarks" / "traces").glob("*.jsonl"))

SIMULATIONS = [
    # (label, extra args)
    ("fixed+oracle", ["--policies", "fixed-0", "fixed-1", "fixed-3", "fixed-5", "oracle"]),
    ("adaptive", ["--policies", "adaptive", "adaptive-combine"]),
]
# cost model -> the proposer sets it prices (the H100 preset has no cost for the traces' self-draft)
COST_MODELS = {"llama3.1-8b-h100": ["ngram"], "smollm2-135m-cpu": ["ngram", "draft", "ngram,draft"]}
MODES = ["serve", "paper"]
# simulation.csv's columns when the fingerprints in /work/baseline were saved (the hash covers these, in this order)
FINGERPRINT_COLUMNS = [
    "trace", "workload", "proposers", "policy", "batch_size", "mode", "cost_model",
    "speedup", "sd_throughput", "ar_throughput", "mean_acc_len", "acceptance_rate",
    "verify_share", "draft_share", "overhead_share", "wasted_verify_share",
    "sd_time_s", "ar_time_s", "sd_mean_latency_s", "ar_mean_latency_s",
    "requests", "generated_tokens", "ngram_match_prob", "seed", "gap_recovered",
]

RUNS = [
    # (label, args, timed): timed = decisions may depend on measured step times
    ("none", ["--method", "none"], False),
    ("ngram-k3", ["--method", "ngram", "--k", "3"], False),
    ("draft-k3", ["--method", "draft", "--draft-model", "self:16", "--k", "3"], False),
    ("eagle-k2", ["--method", "eagle", "--k", "2"], False),
    ("eagle3-k3", ["--method", "eagle3", "--k", "3"], False),
    ("mtp-k1", ["--method", "mtp", "--k", "1"], False),
    ("tree-3x2", ["--method", "draft", "--draft-model", "self:16", "--tree", "3x2"], False),
    ("adaptive-ngram", ["--method", "ngram", "--k", "adaptive", "--cost-model", "smollm2-135m-cpu"], True),
    ("adaptive-ngram-draft", ["--method", "ngram,draft", "--k", "adaptive", "--cost-model", "smollm2-135m-cpu"],
     True),
]
BATCHES = [1, 4]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint_csv(text: str) -> str:
    """The CSV restricted to FINGERPRINT_COLUMNS (cells verbatim), as text."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return text
    keep = [rows[0].index(c) for c in FINGERPRINT_COLUMNS if c in rows[0]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([row[i] for i in keep] for row in rows)
    return out.getvalue()


def simulate(tmp: Path) -> dict[str, str]:
    out = {}
    help_text = subprocess.run(CLI + ["simulate", "--help"], capture_output=True, text=True).stdout
    no_resampling = ["--num-requests", "0"] if "--num-requests" in help_text else []
    for trace in TRACES:
        for label, extra in SIMULATIONS:
            for cost, proposers in COST_MODELS.items():
                for mode in MODES:
                    if mode == "paper" and len(proposers) > 1:  # paper mode prices combine with the H100 preset only
                        proposers = [p for p in proposers if "," not in p]
                    csv = tmp / "sim.csv"
                    cmd = CLI + ["simulate", str(trace), "--cost-model", cost, "--mode", mode,
                                 "--batch-sizes", "1", "4", "32", "-o", str(csv), *no_resampling, "--proposers",
                                 *proposers, *extra]
                    subprocess.run(cmd, check=True, capture_output=True)
                    text = csv.read_text().replace(str(ROOT), "<root>")  # the trace column holds its path
                    text = fingerprint_csv(text)
                    out[f"simulate {trace.stem} {label} {cost} {mode}"] = sha(text.encode())
    return out


def runs(tmp: Path) -> dict[str, str]:
    out = {}
    for label, args, timed in RUNS:
        for b in BATCHES:
            folder = tmp / f"{label}-{b}"
            cmd = CLI + ["run", "--workload", "code-edit", "-n", "4", "--max-new-tokens", "24", "-b", str(b),
                         "--threads", "1", "-o", str(folder), *args]
            subprocess.run(cmd, check=True, capture_output=True)
            records = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
            tokens = {r["id"]: r["output_token_ids"] for r in records}
            key = f"run {label} b={b}" + (" (timed)" if timed else "")
            out[key] = sha(json.dumps(tokens, sort_keys=True).encode())
            choices = json.loads((folder / "summary.json").read_text()).get("adaptive_choices")
            if choices:
                out[key + " choices"] = sha(json.dumps(choices, sort_keys=True).encode())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path)
    group.add_argument("--compare", type=Path)
    ap.add_argument("--skip-runs", action="store_true", help="simulations only (seconds, no model)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prints = simulate(Path(tmp))
        if not args.skip_runs:
            prints.update(runs(Path(tmp)))
    if args.save:
        args.save.write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n")
        print(f"saved {len(prints)} fingerprints to {args.save}")
        return
    before = json.loads(args.compare.read_text())
    differ = [k for k in prints if k in before and before[k] != prints[k]]
    for key in differ:
        print(f"DIFFERS: {key}")
    missing = [k for k in before if k not in prints]
    print(f"{len(prints)} fingerprints, {len(differ)} differ ({sum('(timed)' in k for k in differ)} timed), "
          f"{len(missing)} not compared")
    sys.exit(1 if any("(timed)" not in k for k in differ) else 0)


if __name__ == "__main__":
    main()
