"""Synthetic study folders for the analysis tests: run cells, native traces and a simulation CSV.

The numbers are made up but shaped like a real study (n-gram accepts more on outputs that copy the
prompt; speedup falls with batch size), so every figure and table has something to show.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from specscope.formats.trace import RequestTrace, Trace, write_trace

WORKLOADS = ("chat", "code-edit")
BATCH_SIZES = (1, 4)
METHODS = (("none", 0), ("ngram", 3), ("draft", 3))
PROPOSERS = ("ngram", "draft")
K_MAX = 8


def _speedup(workload: str, method: str, batch: int) -> float:
    base = {"none": 1.0, "ngram": 1.6 if workload == "code-edit" else 1.1, "draft": 1.4}[method]
    return 1.0 + (base - 1.0) / batch


def write_cell(runs_dir: Path, workload: str, method: str, k: int, batch: int, rng, *, summary=True,
               tree: str | None = None) -> Path:
    cell = runs_dir / f"{workload}-{method}-{f'tree{tree}' if tree else f'k{k}'}-b{batch}"
    cell.mkdir(parents=True)
    throughput = 20.0 * batch ** 0.7 * _speedup(workload, method, batch) * (1.05 if tree else 1.0)
    tokens = 400
    lines = []
    for i in range(6):
        n_steps = 20
        accepted = [int(rng.integers(0, k + 1)) if k else 0 for _ in range(n_steps)]
        per_token = batch / throughput * float(rng.uniform(0.9, 1.1))  # seconds between a request's tokens
        ttft = 0.05 * batch * float(rng.uniform(0.8, 1.2))
        lines.append(json.dumps({
            "id": str(i), "prompt_token_ids": [1, 2, 3], "output_token_ids": list(range(n_steps)),
            "output_text": "x", "steps": [{"proposed": k, "accepted": a} for a in accepted],
            "bleu4_prompt_overlap": float(rng.random()),
            "ttft_s": ttft, "latency_s": ttft + per_token * (n_steps - 1),
        }))
    (cell / "requests.jsonl").write_text("\n".join(lines) + "\n")
    if summary:
        wall = tokens / throughput
        (cell / "summary.json").write_text(json.dumps({
            "model": "tiny", "method": method, "k": k, "batch_size": batch, "workload": workload,
            "threads": 2, "device": "cpu", "partial": False,
            "generated_tokens": tokens, "wall_seconds": wall, "throughput_tok_s": throughput,
            "mean_acc_len": 1.5, "acceptance_rate": 0.4,
            "time_breakdown_s": {"draft": 0.1 * wall if k else 0.0, "verify": 0.7 * wall,
                                 "sample": 0.05 * wall, "overhead": 0.15 * wall},
            "peak_rss_mb": 500.0 + (80.0 if method == "draft" else 5.0 if method == "ngram" else 0.0) + batch,
            **({"tree": tree} if tree else {}),
        }))
    return cell


def make_trace(workload: str, rng, n_requests: int = 12) -> Trace:
    requests = []
    for i in range(n_requests):
        prompt = [int(t) for t in rng.integers(0, 50, size=40)]
        copy = i / (n_requests - 1)  # share of the output copied from the prompt
        length = int(rng.integers(20, 60))
        output = [prompt[j % len(prompt)] if rng.random() < copy else int(rng.integers(50, 100))
                  for j in range(length)]
        ngram = np.minimum(K_MAX + 1, 1 + rng.poisson(4 * copy, size=length))
        draft = np.minimum(K_MAX + 1, 1 + rng.poisson(1.5, size=length))
        left = length - np.arange(length)  # a step cannot commit past the end of the output
        ngram, draft = np.minimum(ngram, left), np.minimum(draft, left)
        ngram[0] = draft[0] = 1
        requests.append(RequestTrace(str(i), prompt, output, {"ngram": ngram, "draft": draft}, workload))
    return Trace(requests, list(PROPOSERS), model="tiny", k_max=K_MAX, hardware="cpu", workload=workload)


def write_simulation(path: Path) -> None:
    """Rows spelled as `specscope simulate` writes them: fixed-K policies, `oracle` over a comma set."""
    rows = []
    for workload in WORKLOADS:
        trace = f"traces/{workload}.jsonl"
        for batch in BATCH_SIZES:
            for proposer in PROPOSERS:
                fixed = _speedup(workload, proposer, batch) * 1.05
                rows.append([trace, workload, proposer, "fixed-3", batch, fixed])
                rows.append([trace, workload, proposer, "oracle", batch, fixed * 1.3])
            rows.append([trace, workload, ",".join(PROPOSERS), "oracle", batch, 2.2 / batch ** 0.3])
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trace", "workload", "proposers", "policy", "batch_size", "mode", "cost_model", "speedup"])
        writer.writerows([r[:5] + ["serve", "fitted"] + r[5:] for r in rows])


def write_profile(path: Path) -> None:
    """A profile CSV as `specscope profile` writes it: a k-token step costs more the larger the batch."""
    rows = []
    for batch in BATCH_SIZES:
        for context in (64, 256):
            for k in (0, 1, 3, 5):
                seconds = 0.01 * batch ** 0.5 * (1 + 0.3 * k * batch ** 0.3) * (1 + context / 2048)
                rows.append(("decode" if k == 0 else "verify", batch * (k + 1), batch * context, batch * k, seconds,
                             batch, k, context))
                if k:
                    rows.append(("draft:draft", batch * k, batch * context, batch * (k + 1), 0.004 * k * batch ** 0.5,
                                 batch, k, context))
                    rows.append(("draft:ngram", batch * k, batch * context, batch * (k + 1), 1e-5 * batch, batch, k,
                                 context))
        rows += [("sample", batch, batch * 64, 0, 1e-4, batch, 0, 64), ("overhead", batch, batch * 64, 0, 5e-4, batch,
                                                                          0, 64)]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step_kind", "num_batched_tokens", "num_kv_tokens", "num_draft_tokens", "seconds",
                         "batch_size", "k", "context"])
        writer.writerows(rows)


def build_study(root: Path, *, runs=True, traces=True, simulation=True, profile=True, trees=True) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    if runs:
        for workload in WORKLOADS:
            for method, k in METHODS:
                for batch in BATCH_SIZES:
                    write_cell(root / "runs", workload, method, k, batch, rng)
            for batch in BATCH_SIZES if trees else ():
                write_cell(root / "runs", workload, "draft", 6, batch, rng, tree="3x2")
    if profile:
        write_profile(root / "profile.csv")
    if traces:
        for workload in WORKLOADS:
            write_trace(root / "traces" / f"{workload}.jsonl", make_trace(workload, rng))
    if simulation:
        write_simulation(root / "simulation.csv")
    return root


@pytest.fixture
def study_dir(tmp_path) -> Path:
    """A complete synthetic study: runs, traces and simulation."""
    return build_study(tmp_path / "study")


@pytest.fixture(scope="session")
def full_report(tmp_path_factory) -> Path:
    """report.html of a complete synthetic study, written once per test session (rendering is slow)."""
    from specscope.analysis.report import write_report

    root = build_study(tmp_path_factory.mktemp("full") / "study")
    return write_report(root).path
