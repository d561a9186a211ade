"""The HTML report: every figure captioned with its settings, missing parts stated, written atomically."""

import re

import numpy as np
import pytest

from specscope.analysis.report import write_report
from specscope.errors import SpecscopeError
from specscope.formats.trace import write_trace

from .conftest import build_study, make_trace, write_cell

FIGURE = re.compile(r"<figure><img class='figure' alt='Figure (\d+)' src='data:image/png;base64,[A-Za-z0-9+/=]+'>"
                    r"<figcaption><b>Figure \1\.</b> (.*?)</figcaption></figure>", re.S)


def test_full_study_shows_every_section(full_report):
    page = full_report.read_text()
    assert "Not shown" not in page
    figures = FIGURE.findall(page)
    assert [int(n) for n, _ in figures] == list(range(1, 20))
    for _, caption in figures:  # each caption says what it shows and the settings behind it
        assert len(caption) > 150
        assert any(word in caption for word in ("Measured: model tiny", "Trace ", "Simulated by"))
    assert "http://" not in page and "https://" not in page  # self-contained


def _rows(page: str, start: str, end: str) -> list[list[str]]:
    part = page[page.index(start):page.index(end)]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", part)[1:]]


def test_the_page_opens_with_the_verdict_then_latency_and_why(full_report):
    page = full_report.read_text()
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles[:3] == ["Verdict", "Latency", "Why speculation pays or not"]
    rows = _rows(page, "<h2>Verdict</h2>", "<h2>Latency</h2>")
    by_key = {(c[0], c[1]): c for c in rows}
    assert set(by_key) == {("chat", "1"), ("chat", "4"), ("code-edit", "1"), ("code-edit", "4")}
    assert by_key[("code-edit", "1")][2:4] == ["enable", "ngram k=3"]  # the synthetic study's fastest cell
    assert re.fullmatch(r"\+60\.0% ± \d+\.\d%", by_key[("code-edit", "1")][4])
    assert all(re.fullmatch(r"[\d.,]+ ms → [\d.,]+ ms \([+-]\d+\.\d%\)", c[5]) for c in rows)  # per-token latency
    assert "2 standard errors of the mean per-request speed ratio" in page
    why = _rows(page, "<h2>Why speculation pays or not</h2>", "<h2>Measured speedup")
    assert [r[:3] for r in why][:2] == [["1", "draft k=3", "4"], ["1", "ngram k=3", "4"]]
    assert {r[-1] for r in why} <= {"pays", "does not pay", "pays on some workloads"}


def test_headroom_table_names_best_method_and_gap(full_report):
    page = full_report.read_text()
    rows = _rows(page, "<h2>Best measured against the oracle bound</h2>", "<h2>Simulator fidelity")
    by_key = {(c[0], c[1]): c for c in rows}
    assert by_key[("code-edit", "1")][2] == "ngram k=3"  # the synthetic study's fastest cell
    assert by_key[("chat", "1")][2] == "draft tree 3x2"
    assert all(c[6].endswith("%") for c in rows)  # a gap for every row: simulation.csv is present


def test_traces_only_folder_gets_trace_figures_and_states_the_rest(tmp_path):
    write_trace(tmp_path / "traces" / "chat.jsonl", make_trace("chat", np.random.default_rng(0), n_requests=6))
    result = write_report(tmp_path)
    page = result.path.read_text()
    assert result.figures == 5  # heatmap, by position, box plots, BLEU overlap, per-position difference
    assert set(result.missing) == {
        "Verdict", "Latency", "Why speculation pays or not", "Measured speedup against batch size",
        "Where the time goes", "Memory overhead", "Simulated: oracle and fixed-k against batch size",
        "Simulated: oracle combine against single-proposer oracles", "Best measured against the oracle bound",
        "Simulator fidelity",
    }
    assert page.count("Not shown: ") == 10
    shown = page.index("<h2>Acceptance length by position and request</h2>")
    assert shown < page.index("<h2>Verdict</h2>")  # sections without data come last
    assert "no simulation.csv; run `specscope simulate" in page


def test_unfinished_cell_is_noted_in_the_page(tmp_path):
    rng = np.random.default_rng(0)
    write_cell(tmp_path / "runs", "chat", "none", 0, 1, rng)
    write_cell(tmp_path / "runs", "chat", "ngram", 3, 1, rng, summary=False)
    page = write_report(tmp_path).path.read_text()
    assert "has no summary.json (unfinished) and was skipped" in page


def test_bad_input_leaves_no_report(tmp_path):
    with pytest.raises(SpecscopeError, match="nothing to report"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
    cell = tmp_path / "runs" / "c"
    cell.mkdir(parents=True)
    (cell / "summary.json").write_text("{")
    (tmp_path / "report.html").write_text("old report")
    with pytest.raises(SpecscopeError, match="summary.json:1: not valid JSON"):
        write_report(tmp_path)
    assert (tmp_path / "report.html").read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_simulation_captions_name_the_cost_model(tmp_path):
    from specscope.costs.presets import PRESET_DIR

    root = build_study(tmp_path / "study", runs=False, traces=False, profile=False)
    (root / "cost_model.toml").write_text((PRESET_DIR / "llama3.1-8b-h100.toml").read_text())
    result = write_report(root)
    captions = [c for _, c in FIGURE.findall(result.path.read_text())]
    assert result.figures == len(captions) == 2
    for caption in captions:
        assert "cost model fitted (cost_model.toml: llama3.1-8b-h100" in caption
        assert "hardware 1x NVIDIA H100" in caption and "batch sizes 1, 4" in caption


def test_the_recommendation_says_where_measured_adaptive_beats_the_best_fixed_k():
    import pandas as pd

    from specscope.analysis import metrics
    from specscope.analysis.sections.simulated import measured_adaptive_note as _measured_adaptive_note

    rows = [("none", 0, 1, 10.0), ("ngram", 3, 1, 12.0), ("ngram", 5, 1, 13.0), ("adaptive(ngram)", np.nan, 1, 14.0),
            ("none", 0, 4, 20.0), ("ngram", 3, 4, 22.0), ("adaptive(ngram)", np.nan, 4, 21.0),
            ("adaptive(ngram,draft)", np.nan, 4, 30.0),  # no fixed k of ngram or draft beats it; ngram k=3 is compared
            ("none", 0, 16, 40.0), ("ngram", 3, 16, 30.0), ("adaptive(ngram)", np.nan, 16, 38.0),  # below none
            ("none", 0, 8, 40.0), ("ngram", 3, 8, 30.0), ("adaptive(ngram)", np.nan, 8, 41.0)]  # k=3 loses; none is beaten
    runs = pd.DataFrame([{"model": "m", "workload": "chat", "method": m, "k": k, "batch_size": b, "throughput_tok_s": t,
                          "label": m if m.startswith("adaptive") else f"{m} k={k}"} for m, k, b, t in rows])
    note = _measured_adaptive_note(metrics.with_speedup(runs))
    assert note.startswith("Measured: --k adaptive beats the best measured fixed k of its proposers (or none, where no k "
                           "beats it) in 3 of 5 cells")
    assert "chat batch 1 (adaptive(ngram) 1.400x vs ngram k=5 1.300x)" in note
    assert "chat batch 4 (adaptive(ngram,draft) 1.500x vs ngram k=3 1.100x)" in note
    assert "chat batch 8 (adaptive(ngram) 1.025x vs none 1.000x)" in note and "batch 16" not in note
    assert _measured_adaptive_note(metrics.with_speedup(runs[~runs["method"].str.startswith("adaptive")])) == ""


def test_the_simulated_adaptive_line_groups_cells_by_workload_proposers_and_mode():
    import pandas as pd

    from specscope.analysis.sections.simulated import adaptive_note as _adaptive_note

    rows = []
    for b, fixed, adaptive in [(1, 1.09, 1.15), (2, 1.10, 1.19), (4, 1.10, 1.20)]:  # draft: every batch size wins
        rows += [("draft", "fixed", b, fixed), ("draft", "adaptive", b, adaptive)]
    for b, fixed, adaptive in [(1, 1.24, 1.25), (2, 1.30, 1.20), (4, 1.10, 1.12)]:  # ngram: two of three
        rows += [("ngram", "fixed", b, fixed), ("ngram", "adaptive", b, adaptive)]
    for b, fixed, adaptive in [(1, 0.70, 0.99), (2, 0.70, 1.00), (4, 0.70, 1.01)]:  # slow: plain decoding is the bar
        rows += [("slow", "fixed", b, fixed), ("slow", "adaptive", b, adaptive)]
    sim = pd.DataFrame([{"trace": "t", "workload": "code-edit", "mode": "serve", "proposers": p, "policy_kind": kind,
                         "batch_size": b, "speedup": x} for p, kind, b, x in rows])
    note = _adaptive_note(sim)
    assert note == ("Simulated adaptive beats the best fixed k of its proposers (plain decoding included) in 6 of 9 "
                    "cells: code-edit draft (serve) at every batch size (1-4): 1.15-1.20x vs 1.09-1.10x; code-edit ngram "
                    "(serve) at batch 1, 4: 1.12-1.25x vs 1.10-1.24x; code-edit slow (serve) at batch 4: 1.01x vs 1.00x.")
    worse = sim.assign(speedup=np.where(sim["policy_kind"] == "adaptive", 0.5, 1.0))
    assert _adaptive_note(worse) == ("Simulated adaptive policies do not beat the best fixed k (plain decoding included) "
                                     "in any cell of simulation.csv.")


def test_bleu_panel_is_omitted_with_the_reason_when_the_brevity_penalty_caps_every_score():
    from specscope.analysis import metrics
    from specscope.analysis.sections.traces import brevity_capped
    from specscope.formats.trace import RequestTrace, Trace

    rng = np.random.default_rng(0)
    requests = []
    for i in range(6):
        prompt = [int(t) for t in rng.integers(0, 50, size=200)]
        output = prompt[:20]  # copies the prompt, but is 10x shorter
        acc = np.minimum(9, 1 + rng.poisson(3, size=20))
        requests.append(RequestTrace(str(i), prompt, output, {"ngram": acc, "draft": acc[::-1].copy()}, "chat"))
    trace = Trace(requests, ["ngram", "draft"], model="tiny", k_max=8, workload="chat")
    _, per_bin = metrics.bleu_bins(metrics.trace_requests([trace]), "ngram", "draft")
    reason = brevity_capped(trace, per_bin)
    assert "brevity penalty alone caps every score at 0.00" in reason and "median 20 tokens" in reason
    spread = make_trace("chat", rng)  # outputs as long as the prompts: the bins separate
    _, per_bin = metrics.bleu_bins(metrics.trace_requests([spread]), "ngram", "draft")
    assert brevity_capped(spread, per_bin) == ""


def test_resampled_bounds_are_marked_and_fidelity_uses_the_cells_twins(tmp_path):
    import pandas as pd

    root = build_study(tmp_path)
    sim = pd.read_csv(root / "simulation.csv")
    sim["distinct_requests"] = 2  # fewer distinct requests than batch 4: serve mode resampled them
    sim["mode"] = "serve"
    sim.to_csv(root / "simulation.csv", index=False)
    cells = sorted(p.name for p in (root / "runs").iterdir() if "-ngram-k3-" in p.name)
    pd.DataFrame({"cell": cells, "workload": [c.split("-ngram")[0] for c in cells], "proposers": "ngram",
                  "policy": "fixed-3", "batch_size": [int(c.rsplit("-b", 1)[1]) for c in cells],
                  "speedup": 1.1}).to_csv(root / "twins.csv", index=False)
    page = write_report(root).path.read_text()
    headroom = _rows(page, "<h2>Best measured against the oracle bound</h2>", "<h2>Simulator fidelity")
    bounds = {(c[0], c[1]): c[4] for c in headroom}
    assert bounds[("chat", "4")].endswith("(resampled from 2 requests)") and "(resampled" not in bounds[("chat", "1")]
    assert all("fidelity ±" in c[-1] for c in headroom)  # the model's error beside every bound
    assert "Resampled: these rows rest on fewer distinct requests" in page
    fidelity = page[page.index("<h2>Simulator fidelity</h2>"):]
    assert "Each cell against its simulated twin" in fidelity
    table = fidelity[:fidelity.index("</table>")]
    assert len(re.findall(r"<tr>", table)) - 1 == len(cells)  # one row per cell with a twin (plus the header)
