"""A sweep that simulates under a named cost model keeps it beside simulation.csv, and reports capped batches."""

import shutil
from pathlib import Path

from specscope.costs.pricing import analytic_cost_model
from specscope.costs.presets import read_cost_model, write_cost_model
from specscope.study.sweep import finish
from specscope.study.sweep.config import FITTED, SimulateSpec

TRACE = Path(__file__).resolve().parents[2] / "benchmarks" / "traces" / "chat.jsonl"


def test_the_named_cost_model_is_kept_and_caps_are_noted(tmp_path):
    trace = tmp_path / "traces" / "chat.jsonl"
    trace.parent.mkdir()
    shutil.copy(TRACE, trace)
    model = analytic_cost_model("llama-3.1-8b", "l4", drafts=["ngram"]).model
    from dataclasses import replace

    small = tmp_path / "small.toml"
    write_cost_model(small, replace(model, max_kv_tokens=2000))  # a few of the trace's requests at most
    spec = SimulateSpec(["fixed-1"], ["ngram"], [1, 64], str(small), "serve", 42)
    rows, skipped, capped = finish.simulate(tmp_path, spec, [trace])
    kept = read_cost_model(tmp_path / "simulation_cost_model.toml")
    assert kept.target == model.target and kept.max_kv_tokens == 2000
    assert rows == 2 and not skipped
    assert len(capped) == 1 and "batch size(s) 64 do not fit" in capped[0]
    (tmp_path / "cost_model.toml").write_text(small.read_text())
    finish.simulate(tmp_path, SimulateSpec(["fixed-1"], ["ngram"], [1], FITTED, "serve", 42), [trace])
    assert not (tmp_path / "simulation_cost_model.toml").exists()  # the fitted one is cost_model.toml itself
