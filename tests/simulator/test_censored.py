"""Simulating a trace made from a server's steps (censored at k + 1) against the full per-position trace of the same
requests: fixed k up to the recorded k is exact unless flagged, and every flagged row (the oracle, larger k) is a
lower bound of the true speedup."""

import pytest

from specscope.costs.presets import load_cost_model
from specscope.engine.engine import Engine
from specscope.engine.proposers import build_proposer
from specscope.engine.tracing import collect_traces
from specscope.formats.simulation import COLUMNS, write_simulation
from specscope.formats.trace import RequestTrace, Trace, acc_len_from_steps
from specscope.settings import RunSettings
from specscope.simulator.grid import PAPER, SERVE, run_grid

from sd_helpers import repetitive_requests

K = 2
MAX_NEW = 40
POLICIES = ["fixed-1", "fixed-2", "fixed-4", "oracle"]


@pytest.fixture(scope="module")
def traces(tiny_model):
    """(censored trace from a k = 2 run's steps, full per-position trace with k_max 8), greedy draft self:2."""
    requests = repetitive_requests(8, seed=3)
    settings = RunSettings.build(method="draft", k=K, draft_model="self:2", batch_size=4, max_new_tokens=MAX_NEW)
    engine = Engine(tiny_model, build_proposer("draft", settings, target=tiny_model), settings, stop_token_ids=(2,))
    ran = {s.request.id: s for s in engine.generate(requests)}
    proposer = build_proposer("draft", settings.replace(k=8), target=tiny_model)
    full, censored = [], []
    for seq, acc, _ in collect_traces(tiny_model, {"draft": proposer}, requests, 8, 4, MAX_NEW, (2,)):
        out = seq.output.tolist()
        full.append(RequestTrace(seq.request.id, list(seq.request.prompt_token_ids), out, acc))
        served = ran[seq.request.id]
        assert served.output.tolist() == out  # greedy: the same outputs
        values, positions = acc_len_from_steps(len(out), served.proposed, served.accepted)
        censored.append(RequestTrace(seq.request.id, list(seq.request.prompt_token_ids), out, {"draft": values},
                                     censored={"draft": positions} if positions.size else None))
    return (Trace(censored, ["draft"], k_max=K, extra={"censored_at": K + 1}),
            Trace(full, ["draft"], k_max=8))


@pytest.mark.parametrize("mode", [SERVE, PAPER])
def test_censored_rows_are_exact_or_flagged_lower_bounds(traces, mode):
    censored, full = traces
    assert any(r.censored for r in censored.requests)  # some step accepted both drafts
    costs = load_cost_model("smollm2-135m-cpu")
    got = run_grid([censored], [("draft",)], POLICIES, [1, 4], costs, mode=mode)
    true = run_grid([full], [("draft",)], POLICIES, [1, 4], costs, mode=mode)
    flagged = {}
    for row, ref in zip(got, true):
        assert (row["policy"], row["batch_size"]) == (ref["policy"], ref["batch_size"])
        flagged[row["policy"]] = row["lower_bound"]
        if row["lower_bound"]:
            assert row["speedup"] <= ref["speedup"] + 1e-9, row["policy"]
        else:
            assert row["speedup"] == pytest.approx(ref["speedup"], rel=1e-12), row["policy"]
    assert flagged["fixed-2"] is False  # the recorded k: exact
    assert flagged["oracle"] is True and flagged["fixed-4"] is True


def test_uncensored_rows_carry_no_lower_bound_column(traces, tmp_path):
    censored, full = traces
    costs = load_cost_model("smollm2-135m-cpu")
    rows = run_grid([full], [("draft",)], ["fixed-2"], [1], costs)
    assert "lower_bound" not in rows[0]
    write_simulation(tmp_path / "a.csv", rows)
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    rows += run_grid([censored], [("draft",)], ["oracle"], [1], costs)
    write_simulation(tmp_path / "b.csv", rows)
    lines = (tmp_path / "b.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS + ["lower_bound"])
    assert lines[1].endswith(",") and lines[2].endswith(",True")
