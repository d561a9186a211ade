"""The report's server section: cells `specscope bench` measured against the tiny model's `specscope serve` (and a
plain baseline server) shown with speedup and latency against concurrency, acceptance by position, and the
simulation of their censored trace with lower bounds marked; engine cells stay apart."""

import pytest

from specscope.analysis.loaders import load_study
from specscope.analysis.report import write_report
from specscope.settings import RunSettings
from specscope.study.bench import BenchOptions, Level, bench
from specscope.study.simulate import simulate
from specscope.workloads.prompt import Prompt

from server_helpers import TINY, ThreadServer, tiny_service


@pytest.fixture(scope="module")
def server_study(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("servers")
    prompts = [Prompt(f"p{i}", "chat", ({"role": "user", "content": " ".join(["w5 w6 w7"] * (2 + i))},), 16)
               for i in range(4)]
    sd_app, _, _, _ = tiny_service(tiny_model)
    plain_app, _, _, _ = tiny_service(tiny_model, method="none", k=0)
    with ThreadServer(sd_app) as sd, ThreadServer(plain_app) as plain:
        options = BenchOptions(endpoint=sd.url, model=TINY, levels=(Level(1), Level(2)), label="sd-ngram",
                               baseline_endpoint=plain.url)
        bench(RunSettings(), options, folder, prompts)
    simulate([folder / "traces" / "sd-ngram.jsonl"], None, ["fixed-1", "fixed-3", "oracle"], [1, 2],
             "smollm2-135m-cpu", output=folder / "simulation.csv")
    return folder


def test_server_cells_load_apart_from_engine_cells(server_study):
    study = load_study(server_study)
    assert study.runs.empty and len(study.servers) == 4
    assert sorted(study.servers["cell"]) == ["baseline-c1", "baseline-c2", "sd-ngram-c1", "sd-ngram-c2"]
    assert set(study.servers["role"]) == {"sd", "baseline"}


def test_the_report_shows_server_cells_with_speedup_latency_acceptance_and_bounds(server_study):
    result = write_report(server_study)
    section = next(s for s in result.sections if s.title.startswith("Measured on servers"))
    assert not section.missing
    assert sum(b.is_figure for b in section.blocks) == 4  # throughput, speedup, latency, acceptance by position
    page = result.path.read_text()
    for text in ("sd-ngram-c2", "baseline-c1", "metrics.speculative_decoding", "TTFT p50 / p99 ms",
                 "at least", "censored at 4"):
        assert text in page, text
    assert "Measured speedup against batch size" in result.missing  # no engine cells in this folder
