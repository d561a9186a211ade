"""`specscope demo`: simulates the shipped trace end to end and writes the result CSV."""

import csv
import json
import subprocess
import sys

from specscope.commands.demo import DEMO_TRACE
from specscope.traces import read_trace


def test_the_shipped_demo_trace_is_valid_and_labelled_synthetic():
    trace = read_trace(DEMO_TRACE)
    assert trace.extra.get("synthetic") is True
    assert set(trace.proposers) == {"ngram", "eagle"} and len(trace.requests) >= 32


def test_demo_writes_simulation_csv(tmp_path):
    result = subprocess.run([sys.executable, "-m", "specscope", "demo", "-o", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "simulation.csv").open()))
    assert len(rows) == 9 * 6
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["command"] == "demo" and summary["configs"] == 54
    oracle = {r["batch_size"]: float(r["speedup"]) for r in rows if r["proposers"] == "eagle" and r["policy"] == "oracle"}
    assert all(s > 1 for s in oracle.values())
