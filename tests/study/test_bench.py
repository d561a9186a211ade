"""`specscope bench`'s job against a real HTTP server (the tiny model's `specscope serve` app on a socket, in a
thread): cells in the study-folder format, latency and acceptance in the summary, a censored trace, a baseline, and
bad endpoints as one-line errors."""

import json
import threading

import pytest

from specscope.errors import SpecscopeError
from specscope.formats.trace import read_trace
from specscope.settings import RunSettings
from specscope.study.bench import BenchOptions, Level, bench, by_position, parse_levels, percentiles
from specscope.workloads.prompt import Prompt

from server_helpers import TINY, ThreadServer, tiny_service


@pytest.fixture
def tiny_server(tiny_model):
    """The tiny model's `specscope serve` (ngram, k = 3) on a real socket: (base URL, engine loop)."""
    app, loop, _, _ = tiny_service(tiny_model)
    with ThreadServer(app) as server:
        yield server.url, loop


def prompts(n=6):
    phrase = "w5 w6 w7 w8"
    return [Prompt(f"p{i}", "chat", ({"role": "user", "content": " ".join([phrase] * (2 + i % 3))},), 12)
            for i in range(n)]


def read_cell(folder):
    summary = json.loads((folder / "summary.json").read_text())
    records = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    return summary, records


def test_bench_writes_a_cell_per_level_with_latency_acceptance_and_a_trace(tiny_server, tmp_path):
    url, _ = tiny_server
    options = BenchOptions(endpoint=url, model=TINY, levels=(Level(1), Level(3)), label="sd-ngram")
    result = bench(RunSettings(), options, tmp_path, prompts())
    assert [s["output_dir"] for s in result.cells] == [str(tmp_path / "runs" / "sd-ngram-c1"),
                                                       str(tmp_path / "runs" / "sd-ngram-c3")]
    summary, records = read_cell(tmp_path / "runs" / "sd-ngram-c3")
    assert summary["command"] == "bench" and summary["num_completed"] == 6 and summary["num_errors"] == 0
    assert summary["batch_size"] == 3 and summary["concurrency"] == 3 and summary["engine"] == "specscope"
    assert summary["proposer"] == "ngram" and summary["k"] == 3 and summary["role"] == "sd"
    assert summary["sd_source"] == "metrics.speculative_decoding"
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms"):
        assert summary[key]["p50"] <= summary[key]["p99"], key
    assert summary["generated_tokens"] == sum(r["num_output_tokens"] for r in records)
    steps = sum(len(r["steps"]["accepted"]) for r in records)
    accepted = sum(sum(r["steps"]["accepted"]) for r in records)
    assert summary["decode_steps"] == steps and summary["mean_acc_len"] == pytest.approx(1 + accepted / steps)
    counters = summary["server_metrics"]  # /metrics before and after, differenced: the same steps
    assert counters["prefix"] == "specscope" and counters["num_drafts"] == steps
    assert counters["num_accepted_tokens"] == accepted
    first = sum(a > 0 for r in records for a in r["steps"]["accepted"])  # steps that kept draft 0
    assert counters["acceptance_by_position"][0] * steps == pytest.approx(first)  # vLLM's: per draft (step)
    drafting = sum(d > 0 for r in records for d in r["steps"]["proposed"])
    assert summary["acceptance_by_position"][0] == pytest.approx(first / drafting)  # per step that proposed it
    for r in records:
        assert r["ttft_s"] > 0 and r["latency_s"] >= r["ttft_s"] and r["http_status"] == 200
        assert r["num_output_tokens"] == len(r["output_token_ids"]) and r["num_output_tokens_from"] == "usage"
        assert r["sd"]["source"] == "metrics.speculative_decoding"
    trace = read_trace(tmp_path / "traces" / "sd-ngram.jsonl")
    assert trace.proposers == ["ngram"] and trace.k_max == 3 and trace.extra["censored_at"] == 4
    assert len(trace.requests) == 6 and trace.extra["cell"] == "sd-ngram-c1"
    assert {r.id: r.output_token_ids for r in trace.requests} == {
        r["id"]: r["output_token_ids"] for r in read_cell(tmp_path / "runs" / "sd-ngram-c1")[1]}


def test_baseline_endpoint_runs_each_level_first(tiny_model, tiny_server, tmp_path):
    url, _ = tiny_server
    app, _, _, _ = tiny_service(tiny_model, method="none", k=0)
    with ThreadServer(app) as plain:
        options = BenchOptions(endpoint=url, model=TINY, levels=(Level(2),), label="sd", baseline_endpoint=plain.url)
        result = bench(RunSettings(), options, tmp_path, prompts(4))
    names = [s["output_dir"].rsplit("/", 1)[-1] for s in result.cells]
    assert names == ["baseline-c2", "sd-c2"]
    base, records = read_cell(tmp_path / "runs" / "baseline-c2")
    assert base["role"] == "baseline" and base["proposer"] == "none" and base["k"] == 0
    assert base["sd_source"] is None and base["mean_acc_len"] is None and not base["notes"]
    sd, sd_records = read_cell(tmp_path / "runs" / "sd-c2")
    assert {r["id"]: r["output_token_ids"] for r in records} == {r["id"]: r["output_token_ids"] for r in sd_records}


def test_a_server_without_sd_metrics_is_noted(tiny_model, tmp_path):
    app, _, _, _ = tiny_service(tiny_model, level="none")
    with ThreadServer(app) as server:
        result = bench(RunSettings(), BenchOptions(endpoint=server.url, model=TINY, label="x"), tmp_path, prompts(2))
    summary = result.cells[0]
    assert summary["sd_source"].startswith("/metrics (specscope:spec_decode_*")  # the counters still count
    assert summary["mean_acc_len"] == pytest.approx(summary["server_metrics"]["mean_acc_len"])
    assert result.traces[0]["path"] is None and "per-step arrays" in result.traces[0]["reason"]


def test_ctrl_c_keeps_the_finished_requests_and_stops(tiny_server, tmp_path):
    url, _ = tiny_server
    seen = []

    def interrupt(record, made, seconds):
        seen.append(record)
        if len(seen) == 2:
            raise KeyboardInterrupt

    options = BenchOptions(endpoint=url, model=TINY, levels=(Level(1), Level(2)), label="sd")
    before = threading.active_count()
    result = bench(RunSettings(), options, tmp_path, prompts(6), on_request=interrupt)
    assert result.interrupted and len(result.cells) == 1 and result.cells[0]["partial"]
    summary, records = read_cell(tmp_path / "runs" / "sd-c1")
    assert summary["partial"] and len(records) == 2 and not (tmp_path / "runs" / "sd-c2").exists()
    assert threading.active_count() <= before  # the load thread ended


def test_failed_requests_are_counted_not_fatal(tiny_server, tmp_path):
    url, _ = tiny_server
    long = Prompt("long", "chat", ({"role": "user", "content": " ".join(["w9"] * 400)},), 12)  # over the context
    problems = []
    bench(RunSettings(), BenchOptions(endpoint=url, model=TINY, label="sd"), tmp_path,
          prompts(2) + [long], on_problem=problems.append)
    summary, records = read_cell(tmp_path / "runs" / "sd-c1")
    assert summary["num_errors"] == 1 and summary["num_completed"] == 2
    assert summary["errors_by_kind"] == {"HTTP 400": 1}
    bad = [r for r in records if r.get("error")]
    assert bad[0]["id"] == "long" and bad[0]["http_status"] == 400 and bad[0]["finish_reason"] == "error"
    assert problems == [f"request long: {bad[0]['error']}"]


def test_bad_endpoints_are_one_line_errors(tiny_server, tmp_path):
    url, _ = tiny_server
    with pytest.raises(SpecscopeError, match="does not serve model 'nope'. Available: tiny"):
        bench(RunSettings(), BenchOptions(endpoint=url, model="nope"), tmp_path, prompts(1))
    with pytest.raises(SpecscopeError, match="no answer"):
        bench(RunSettings(), BenchOptions(endpoint="http://127.0.0.1:9/v1", model=TINY), tmp_path, prompts(1))
    with pytest.raises(SpecscopeError, match="OpenAI base URL"):
        bench(RunSettings(), BenchOptions(endpoint="localhost:8000", model=TINY), tmp_path, prompts(1))
    with pytest.raises(SpecscopeError, match="baseline"):
        bench(RunSettings(), BenchOptions(endpoint=url, model=TINY, label="baseline"), tmp_path, prompts(1))
    assert not (tmp_path / "runs").exists()


def test_levels_percentiles_and_positions():
    assert [lv.name for lv in parse_levels("16,1,4", None)] == ["c1", "c4", "c16"]
    assert [lv.name for lv in parse_levels(None, "0.5,inf")] == ["r0.5", "rinf"]
    for bad in (("0,1", None), ("a", None), (None, "-1"), ("1", "2")):
        with pytest.raises(SpecscopeError):
            parse_levels(*bad)
    stats = percentiles([0.1, 0.2, 0.3, 0.4])
    assert stats["mean"] == pytest.approx(250) and stats["p50"] == pytest.approx(250)
    assert percentiles([]) is None
    done = [{"steps": {"proposed": [3, 3, 2, 0], "accepted": [0, 3, 1, 0]}}]
    assert by_position(done) == [2 / 3, 1 / 3, 1 / 2]  # draft 1: proposed by 3 steps, kept by 1


def misbehaving_app():
    """An OpenAI-looking server that fails in every way the issue lists, one prompt each; the rest answer well."""
    import asyncio

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "fake"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        which = body["messages"][0]["content"]
        if which == "429":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if which == "500":
            return PlainTextResponse("boom", status_code=500)
        if which == "hang":
            await asyncio.sleep(30)
        if which == "bad-json":
            return PlainTextResponse("{not json")

        async def events():
            if which == "bad-sse":
                yield "data: {oops\n\n"
                return
            yield 'data: {"choices": [{"index": 0, "delta": {"content": "fine"}}]}\n\n'
            yield 'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def test_every_kind_of_server_failure_is_one_failed_request(tmp_path):
    kinds = ["429", "500", "hang", "bad-sse", "ok", "ok2"]
    bad_prompts = [Prompt(k, "chat", ({"role": "user", "content": k},), 8) for k in kinds]
    problems = []
    with ThreadServer(misbehaving_app()) as server:
        result = bench(RunSettings(), BenchOptions(endpoint=server.url, model="m", levels=(Level(3),), label="x",
                                                   timeout_s=1.0), tmp_path, bad_prompts, on_problem=problems.append)
    summary, records = read_cell(tmp_path / "runs" / "x-c3")
    assert summary["num_requests"] == 6 and summary["num_completed"] == 2 and summary["num_errors"] == 4
    assert summary["errors_by_kind"] == {"HTTP 429": 1, "HTTP 500": 1, "timed out after 1 s": 1,
                                         "malformed SSE event (not JSON)": 1}
    assert len(problems) == 4 and all(p.startswith("request ") and "\n" not in p for p in problems)
    ok = [r for r in records if not r.get("error")]
    assert {r["id"] for r in ok} == {"ok", "ok2"} and all(r["num_output_tokens_from"] == "chunks" for r in ok)
    assert summary["sd_source"] is None and "reported no SD acceptance" in summary["notes"][0]
    assert summary["engine"] == "fake" and result.traces[0]["path"] is None
    with ThreadServer(misbehaving_app()) as server:
        bench(RunSettings(), BenchOptions(endpoint=server.url, model="m", label="y", stream=False, timeout_s=5),
              tmp_path, [Prompt("bad-json", "chat", ({"role": "user", "content": "bad-json"},), 8)])
    summary, records = read_cell(tmp_path / "runs" / "y-c1")
    assert summary["num_errors"] == 1 and records[0]["error"].startswith("malformed JSON response")
