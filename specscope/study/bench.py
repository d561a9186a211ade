"""`specscope bench`: load an OpenAI-compatible server with a workload's prompts; each load level is one measured cell.

    info = probe_endpoint(url, model)
    summaries = bench(settings, BenchOptions(url, model, levels=(Level(1), Level(4), Level(16))), Path("out"))

For each level (a concurrency: that many requests in flight, a new one as soon as one finishes; or a
request rate: Poisson arrivals, seeded, `inf` = all at once) the prompts run through `measure.measure`
with a `ServerBackend`, so the cell is written as `specscope run` writes one: `DIR/runs/<label>-c16/
requests.jsonl` as requests finish and `summary.json` at the end (atomically), with the same fields
where they apply. A server cell adds, per request, `ttft_s`, `itl_s` (gaps between streamed events
that carried output), `tpot_s`, `http_status`, `sd` (the acceptance its engine reported, normalised by
`server/adapters.py`, with its `source`), and in the summary latency percentiles (`ttft_ms`, `itl_ms`,
`tpot_ms`, `e2e_ms`: mean, p50, p90, p99), `request_throughput_rps`, `output_throughput_tok_s`,
`goodput_rps` (requests within `--slo-ttft-ms` / `--slo-itl-ms`, the latter against each request's mean
inter-token latency), the engine and its version, `sd_source`, and `server_metrics`: the server's SD
counters scraped from /metrics before and after the cell, differenced (`server/metrics.py`). Where a
server reports acceptance neither per request nor in counters, the summary says so (`notes`).

`--baseline-endpoint` runs every level against a second server (the same model without SD) right
before the SD one, so both see the same machine state: cells `baseline-c16` (role "baseline") next to
`<label>-c16` (role "sd"); `--baseline-cells DIR` copies the cells of an earlier bench as the baseline.

Per-step arrays (vLLM `detailed`, `specscope serve`) become a native trace of the label
(`DIR/traces/<label>.jsonl`, from the first SD cell), censored at k + 1 (`formats/trace.py`).
Ctrl-C keeps the finished cells; the interrupted one is written with its finished requests, marked
partial, and no later level runs. Timeouts and HTTP errors are counted per request (`num_errors`,
`errors_by_kind`), never fatal.
"""

from __future__ import annotations

import asyncio
import json
import math
import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from specscope.errors import SpecscopeError
from specscope.formats.files import atomic_open, write_json_atomic
from specscope.formats.layout import StudyFolder, SUMMARY_JSON
from specscope.formats.summary import read_summary
from specscope.formats.trace import CENSORED_AT, RequestTrace, Trace, acc_len_from_steps
from specscope.formats.trace import request_record as trace_record
from specscope.settings import RunSettings
from specscope.study.measure import measure
from specscope.workloads.prompt import Prompt

BASELINE_LABEL = "baseline"
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Level:
    """One load level: a fixed number of requests in flight, or a request rate (requests/s; inf: all at once)."""

    concurrency: int | None = None
    rate: float | None = None

    @property
    def name(self) -> str:
        if self.concurrency is not None:
            return f"c{self.concurrency}"
        return "rinf" if math.isinf(self.rate) else f"r{self.rate:g}"


@dataclass(frozen=True)
class BenchOptions:
    endpoint: str
    model: str
    levels: tuple[Level, ...] = (Level(1),)
    api: str = "chat"  # chat: /v1/chat/completions (the server's chat template); completions: raw text
    label: str = "server"
    proposer: str | None = None  # what the server drafts with, as traces name it (default: from the server)
    baseline_endpoint: str | None = None
    baseline_cells: Path | None = None
    stream: bool = True
    timeout_s: float = 300.0
    slo_ttft_ms: float | None = None
    slo_itl_ms: float | None = None
    extensions: bool = True  # send return_token_ids / return_spec_tokens_details (see server/client.py)
    seed: int = 0  # of the Poisson arrivals


# ------------------------------------------------------------------------------------------------ endpoint


def probe_endpoint(url: str, model: str):
    """The endpoint's `EndpointInfo`, or a one-line SpecscopeError (unreachable, not OpenAI, wrong model)."""
    import httpx

    from specscope.server.client import EndpointError, probe

    if not url.startswith(("http://", "https://")):
        raise SpecscopeError(f"--endpoint {url}: give the server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1")

    async def go():
        async with httpx.AsyncClient(trust_env=False) as client:
            return await probe(client, url, model)

    try:
        return asyncio.run(go())
    except EndpointError as err:
        raise SpecscopeError(str(err)) from None


# ------------------------------------------------------------------------------------------------ the backend


class ServerBackend:
    """A measurement backend that sends a cell's prompts to a server (`study/backend.py`'s protocol)."""

    def __init__(self, info, options: BenchOptions, level: Level, role: str = "sd",
                 on_problem: Callable[[str], None] | None = None):
        self.info, self.options, self.level, self.role = info, options, level, role
        self.on_problem = on_problem  # one line per failed request, as it happens
        self.records: list[dict] = []
        self.metrics_before: str | None = None
        self.metrics_after: str | None = None
        self.peak_in_flight = 0

    # -------------------------------------------------------------- run

    def run(self, settings: RunSettings, prompts: list[Prompt]) -> Iterator[dict]:
        done: queue.Queue = queue.Queue()
        state = {"loop": None, "task": None}
        thread = threading.Thread(target=self._thread, args=(settings, prompts, done, state), daemon=True,
                                  name="specscope-bench")
        thread.start()
        try:
            while True:
                try:
                    item = done.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                self.records.append(item)
                if item.get("error") and self.on_problem is not None:
                    self.on_problem(f"request {item['id']}: {item['error']}")
                yield item
        finally:
            loop, task = state["loop"], state["task"]
            if thread.is_alive() and loop is not None and task is not None:
                loop.call_soon_threadsafe(task.cancel)
            thread.join(timeout=30)

    def _thread(self, settings, prompts, done: queue.Queue, state: dict) -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        try:
            task = loop.create_task(self._load(settings, prompts, done))
            state["task"] = task
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            done.put(err)
        finally:
            loop.close()
            done.put(None)

    async def _load(self, settings: RunSettings, prompts: list[Prompt], done: queue.Queue) -> None:
        import httpx

        from specscope.server.client import scrape

        opts, level = self.options, self.level
        limit = level.concurrency or len(prompts) or 1
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        async with httpx.AsyncClient(trust_env=False, limits=limits) as client:
            self.metrics_before = await scrape(client, self.info.root)
            in_flight = 0

            async def one(prompt: Prompt):
                nonlocal in_flight
                in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, in_flight)
                try:
                    done.put(await self._request(client, prompt, settings))
                finally:
                    in_flight -= 1

            if level.concurrency is not None:
                gate = asyncio.Semaphore(level.concurrency)

                async def gated(prompt):
                    async with gate:
                        await one(prompt)

                await asyncio.gather(*(gated(p) for p in prompts))
            else:
                rng = np.random.default_rng(opts.seed)
                tasks = []
                for prompt in prompts:
                    tasks.append(asyncio.ensure_future(one(prompt)))
                    if not math.isinf(level.rate):
                        await asyncio.sleep(float(rng.exponential(1.0 / level.rate)))
                await asyncio.gather(*tasks)
            self.metrics_after = await scrape(client, self.info.root)

    async def _request(self, client, prompt: Prompt, settings: RunSettings) -> dict:
        from specscope.server.client import exchange, request_body

        opts = self.options
        max_tokens = settings.max_new_tokens or prompt.max_new_tokens
        path = "/chat/completions" if opts.api == "chat" else "/completions"
        body = request_body(opts.api, self.info.model, prompt, max_tokens, opts.stream, opts.extensions)
        got = await exchange(client, self.info.url + path, body, opts.stream, opts.timeout_s)
        return request_record(prompt, got)

    # -------------------------------------------------------------- summary

    def summary(self, wall_seconds: float) -> dict:
        from specscope.server.metrics import difference, parse_counters

        records, opts = self.records, self.options
        done = [r for r in records if not r.get("error")]
        out: dict = {"backend": "server", "role": self.role, "notes": []}
        out.update(latency_summary(done, wall_seconds, opts.slo_ttft_ms, opts.slo_itl_ms))
        out["errors_by_kind"] = errors_by_kind(records)
        counters = None
        if self.metrics_after is not None:
            try:
                counters = difference(parse_counters(self.metrics_before or ""), parse_counters(self.metrics_after))
            except ValueError as err:
                out["notes"].append(f"/metrics could not be parsed ({' '.join(str(err).split())[:120]})")
        out["server_metrics"] = counters
        out.update(acceptance_summary(done, counters, self.role))
        if out["sd_source"] is None and self.role == "sd":
            out["notes"].append("the server reported no SD acceptance: neither per request (vLLM "
                                "--per-request-spec-decode-metrics, SGLang return_spec_tokens_details, llama.cpp "
                                "timings) nor in /metrics counters; the llama-cpp-python server returns none")
        return out

    def describe(self, settings: RunSettings) -> dict:
        info, opts, level = self.info, self.options, self.level
        ks = [r["sd"]["k"] for r in self.records if isinstance(r.get("sd"), dict) and r["sd"].get("k") is not None]
        drafted = [max(r["steps"]["proposed"], default=0) for r in self.records if isinstance(r.get("steps"), dict)]
        k = max(ks) if ks else (max(drafted) if drafted and max(drafted) > 0 else None)
        label = BASELINE_LABEL if self.role == "baseline" else opts.label
        return {
            "model": info.model, "method": label, "k": k if self.role == "sd" else 0,
            "device": f"server {info.url}", "endpoint": info.url, "engine": info.engine,
            "engine_version": info.version, "server_header": info.server_header, "api": opts.api,
            "stream": opts.stream, "concurrency": level.concurrency, "request_rate": level.rate,
            "level": level.name, "label": label,
        }


def request_record(prompt: Prompt, got) -> dict:
    """One `requests.jsonl` record from an exchange (`formats/requests.py` fields plus the server's)."""
    from specscope.server.adapters import PayloadError, read_acceptance

    record: dict = {"id": prompt.id, "workload": prompt.workload}
    if got.prompt_token_ids is not None:
        record["prompt_token_ids"] = got.prompt_token_ids
    if got.token_ids is not None:
        record["output_token_ids"] = got.token_ids
    record["output_text"] = got.text
    record["finish_reason"] = "error" if got.error else got.finish_reason
    record["http_status"] = got.status
    if got.error:
        record["error"] = got.error
        record["latency_s"] = _round(got.latency_s)
        return record
    tokens, source = _output_tokens(got)
    record["num_output_tokens"] = tokens
    record["num_output_tokens_from"] = source
    prompt_tokens = (got.usage or {}).get("prompt_tokens")
    if isinstance(prompt_tokens, int):
        record["num_prompt_tokens"] = prompt_tokens
    record["latency_s"] = _round(got.latency_s)
    record["ttft_s"] = _round(got.ttft_s)
    record["itl_s"] = [_round(b - a) for a, b in zip(got.chunk_times, got.chunk_times[1:])]
    record["tpot_s"] = (_round((got.latency_s - got.ttft_s) / (tokens - 1))
                        if got.ttft_s is not None and tokens and tokens > 1 else None)
    try:
        acc = read_acceptance(got.response, got.completion_tokens)
    except (PayloadError, TypeError, ValueError, KeyError, AttributeError) as err:  # the output still counts
        acc, record["sd_error"] = None, f"{type(err).__name__}: {err}" if not isinstance(err, PayloadError) else str(err)
    record["mean_acc_len"] = acc.mean_acc_len if acc is not None else None
    if acc is not None:
        record["sd"] = acc.record()
        if acc.per_step_accepted is not None:
            record["steps"] = {"proposed": acc.per_step_drafted, "accepted": acc.per_step_accepted}
    overlap = _overlap(prompt, got.text)
    if overlap is not None:
        record["bleu4_prompt_overlap"] = overlap
    return record


def _output_tokens(got) -> tuple[int, str]:
    if got.completion_tokens is not None:
        return got.completion_tokens, "usage"
    if got.token_ids is not None:
        return len(got.token_ids), "token_ids"
    return len(got.chunk_times), "chunks"  # one token per event, as servers without usage stream them


def _overlap(prompt: Prompt, text: str) -> float | None:
    try:
        from specscope.workloads import bleu4_overlap

        return round(bleu4_overlap(prompt.text, text), 6)
    except (SpecscopeError, ImportError):
        return None


def _round(value):
    return None if value is None else round(float(value), 6)


# ------------------------------------------------------------------------------------------------ summaries


def percentiles(values, scale: float = 1000.0) -> dict | None:
    """{mean, p50, p90, p99} of `values` (seconds) in milliseconds; None without values."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if not values.size:
        return None
    out = {"mean": float(values.mean()) * scale}
    out.update({f"p{p}": float(np.percentile(values, p)) * scale for p in PERCENTILES})
    return out


def latency_summary(done: list[dict], wall: float, slo_ttft_ms: float | None, slo_itl_ms: float | None) -> dict:
    """Latency percentiles, throughputs and goodput over the completed requests."""
    tokens = sum(r.get("num_output_tokens") or 0 for r in done)
    good = [r for r in done if _meets(r, slo_ttft_ms, slo_itl_ms)]
    return {
        "ttft_ms": percentiles(r.get("ttft_s") for r in done),
        "itl_ms": percentiles([gap for r in done for gap in r.get("itl_s") or []]),
        "tpot_ms": percentiles(r.get("tpot_s") for r in done),
        "e2e_ms": percentiles(r.get("latency_s") for r in done),
        "request_throughput_rps": len(done) / wall if wall > 0 else None,
        "output_throughput_tok_s": tokens / wall if wall > 0 else None,
        "slo_ttft_ms": slo_ttft_ms, "slo_itl_ms": slo_itl_ms,
        "goodput_rps": (len(good) / wall if wall > 0 else None) if (slo_ttft_ms or slo_itl_ms) else None,
    }


def _meets(record: dict, slo_ttft_ms: float | None, slo_itl_ms: float | None) -> bool:
    ttft, tpot = record.get("ttft_s"), record.get("tpot_s")
    if slo_ttft_ms is not None and (ttft is None or ttft * 1000.0 > slo_ttft_ms):
        return False
    if slo_itl_ms is not None and tpot is not None and tpot * 1000.0 > slo_itl_ms:
        return False
    return True


def errors_by_kind(records: list[dict]) -> dict:
    """Failed requests counted by the first words of their error (HTTP 429, timed out, connection, ...)."""
    kinds: dict[str, int] = {}
    for r in records:
        if r.get("error"):
            words = str(r["error"]).split(":")[0]
            kinds[words] = kinds.get(words, 0) + 1
    return kinds


def acceptance_summary(done: list[dict], counters: dict | None, role: str) -> dict:
    """The cell's SD totals from the requests' own reports (per-step arrays or counts), else from the server's
    counters; `sd_source` says which. Overrides the step totals `formats/requests.totals` takes from `steps`."""
    reported = [r["sd"] for r in done if isinstance(r.get("sd"), dict)]
    counted = [sd for sd in reported if sd.get("steps") is not None and sd.get("accepted") is not None]
    out: dict = {"sd_source": None, "acceptance_by_position": None}
    if counted:
        steps = sum(sd["steps"] for sd in counted)
        accepted = sum(sd["accepted"] for sd in counted)
        drafted = [sd["drafted"] for sd in counted if sd.get("drafted") is not None]
        out.update({
            "sd_source": ", ".join(sorted({sd["source"] for sd in counted})),
            "sd_requests": len(counted),
            "decode_steps": steps,
            "accepted_tokens": accepted,
            "proposed_tokens": sum(drafted) if len(drafted) == len(counted) else None,
            "mean_acc_len": 1.0 + accepted / steps if steps else None,
        })
        out["acceptance_rate"] = accepted / out["proposed_tokens"] if out["proposed_tokens"] else None
        out["acceptance_by_position"] = by_position(done)
    elif reported:  # means only (TensorRT-LLM's avg_decoded_tokens_per_iter): weighted by output tokens
        means = [(sd["mean_acc_len"], r.get("num_output_tokens") or 0) for r in done
                 if isinstance(r.get("sd"), dict) and (sd := r["sd"]).get("mean_acc_len") is not None]
        weight = sum(w for _, w in means)
        out.update({"sd_source": ", ".join(sorted({sd["source"] for sd in reported})), "sd_requests": len(reported),
                    "mean_acc_len": sum(m * w for m, w in means) / weight if weight else None,
                    "decode_steps": None, "accepted_tokens": None, "proposed_tokens": None,
                    "acceptance_rate": None})
    elif counters and counters.get("num_drafts"):
        out.update({"sd_source": f"/metrics ({counters.get('prefix')}:spec_decode_* counters, differenced)",
                    "mean_acc_len": counters.get("mean_acc_len"), "acceptance_rate": counters.get("acceptance_rate"),
                    "decode_steps": counters.get("num_drafts"), "accepted_tokens": counters.get("num_accepted_tokens"),
                    "proposed_tokens": counters.get("num_draft_tokens"),
                    "acceptance_by_position": counters.get("acceptance_by_position")})
    elif counters and counters.get("sglang_spec_accept_length") is not None:
        out.update({"sd_source": "/metrics (sglang:spec_accept_length gauge: the last batch's, not the cell's)",
                    "mean_acc_len": None, "acceptance_rate": counters.get("sglang_spec_accept_rate")})
    elif role == "baseline" or not reported:
        out.update({"mean_acc_len": None, "acceptance_rate": None, "decode_steps": None,
                    "accepted_tokens": None, "proposed_tokens": None})
    return out


def by_position(done: list[dict]) -> list[float] | None:
    """Acceptance rate of draft j (0-based) over the steps that proposed it, from per-step arrays (a step accepts a
    prefix, so draft j was accepted iff accepted > j). The counters' `acceptance_by_position` (`server/metrics.py`)
    divides by every draft (step) instead, as vLLM's per-position rate does: the two agree when every step
    proposes k drafts."""
    proposed_at: list[int] = []
    accepted_at: list[int] = []
    for r in done:
        steps = r.get("steps")
        if not isinstance(steps, dict):
            continue
        for d, a in zip(steps.get("proposed", ()), steps.get("accepted", ())):
            while len(proposed_at) < d:
                proposed_at.append(0)
                accepted_at.append(0)
            for j in range(d):
                proposed_at[j] += 1
                accepted_at[j] += a > j
    return [a / p for a, p in zip(accepted_at, proposed_at)] if proposed_at else None


# ------------------------------------------------------------------------------------------------ traces


def write_server_trace(path: Path, records: list[dict], info, proposer: str, workload: str, cell: str) -> dict:
    """A native trace of the requests that carry per-step arrays and output token ids, censored at k + 1
    (`formats/trace.py`); returns {"requests", "skipped", "path" or None, "reason"}."""
    usable, skipped = [], 0
    k = 0
    for r in records:
        steps = r.get("steps")
        if r.get("error") or not isinstance(steps, dict) or r.get("output_token_ids") is None:
            skipped += 1
            continue
        made = acc_len_from_steps(len(r["output_token_ids"]), steps["proposed"], steps["accepted"])
        if made is None:
            skipped += 1
            continue
        acc, censored = made
        sd_k = (r.get("sd") or {}).get("k") or 0
        k = max(k, sd_k, max(steps["proposed"], default=0))
        usable.append(RequestTrace(str(r["id"]), r.get("prompt_token_ids") or [], r["output_token_ids"],
                                   {proposer: acc}, workload=r.get("workload"),
                                   censored={proposer: censored} if censored.size else None))
    if not usable or k < 1:
        reason = ("no request carried per-step arrays and output token ids (vLLM: --per-request-spec-decode-metrics "
                  "detailed and return_token_ids; specscope serve: always)") if not usable else "no drafts"
        return {"requests": 0, "skipped": skipped, "path": None, "reason": reason}
    trace = Trace(requests=usable, proposers=[proposer], model=info.model, k_max=k,
                  hardware=f"server: {info.engine} at {info.url}", workload=workload,
                  extra={CENSORED_AT: k + 1, "source": "specscope bench", "engine": info.engine,
                         "engine_version": info.version, "cell": cell,
                         "prompt_token_ids": "as the server returned them (empty where it returned none)"})
    with atomic_open(path) as fh:
        fh.write(json.dumps(trace.header()) + "\n")
        for req in trace.requests:
            fh.write(json.dumps(trace_record(req, trace.proposers), separators=(",", ":")) + "\n")
    return {"requests": len(usable), "skipped": skipped, "path": str(path), "reason": None}


# ------------------------------------------------------------------------------------------------ the job


@dataclass
class BenchResult:
    cells: list[dict] = field(default_factory=list)  # summaries, in the order they ran
    traces: list[dict] = field(default_factory=list)
    interrupted: bool = False


def bench(settings: RunSettings, options: BenchOptions, output: Path, prompts: list[Prompt],
          on_cell_start: Callable[[str, int], None] | None = None,
          on_request: Callable[[dict, int, float], None] | None = None,
          on_problem: Callable[[str], None] | None = None) -> BenchResult:
    """Run every level (baseline first where there is one) into the study folder `output`."""
    if options.label == BASELINE_LABEL:
        raise SpecscopeError(f"--label {BASELINE_LABEL}: that name is the baseline's; pick another, e.g. sd")
    folder = StudyFolder(output)
    info = probe_endpoint(options.endpoint, options.model)
    base_info = probe_endpoint(options.baseline_endpoint, options.model) if options.baseline_endpoint else None
    if options.baseline_cells is not None:
        copy_baseline_cells(options.baseline_cells, folder)
    proposer = options.proposer or (info.speculative or {}).get("proposer") or options.label
    result = BenchResult()
    trace_path = folder.trace(options.label)
    for level in options.levels:
        runs = ([(base_info, "baseline")] if base_info is not None else []) + [(info, "sd")]
        for endpoint, role in runs:
            name = f"{BASELINE_LABEL if role == 'baseline' else options.label}-{level.name}"
            backend = ServerBackend(endpoint, options, level, role, on_problem)
            cell_settings = settings.replace(batch_size=level.concurrency or max(1, len(prompts)))
            if on_cell_start is not None:
                on_cell_start(name, len(prompts))

            def extra(backend=backend, role=role):
                fields = {"proposer": "none" if role == "baseline" else proposer, "adaptive": False,
                          "temperature": 0.0, "top_p": 1.0}
                if backend.level.concurrency is None:
                    fields["batch_size"] = backend.peak_in_flight  # a rate: the most requests in flight
                return fields

            summary = measure(backend, cell_settings, prompts, folder.cell(name), on_request=on_request,
                              keep_partial=True, summary_extra=extra, command="bench")
            result.cells.append(summary)
            if role == "sd" and not trace_path.exists() and not any(t.get("path") for t in result.traces):
                made = write_server_trace(trace_path, backend.records, endpoint, proposer,
                                          prompts[0].workload if prompts else settings.workload, name)
                made["cell"] = name
                result.traces.append(made)
            if summary["partial"]:
                result.interrupted = True
                return result
    return result


def copy_baseline_cells(source: Path, folder: StudyFolder) -> list[str]:
    """Copy the server cells of an earlier bench (`source`: its study folder) into `folder` as baseline cells."""
    runs = StudyFolder(Path(source)).runs
    if not runs.is_dir():
        raise SpecscopeError(f"--baseline-cells {source}: no runs/ folder; pass the -o folder of an earlier "
                             "`specscope bench` against the server without SD")
    copied = []
    for cell in sorted(p for p in runs.iterdir() if (p / SUMMARY_JSON).is_file()):
        summary = read_summary(cell / SUMMARY_JSON)
        if summary.get("command") != "bench":
            continue
        level = summary.get("level") or cell.name.rsplit("-", 1)[-1]
        name = f"{BASELINE_LABEL}-{level}"
        target = folder.cell(name)
        if target.resolve() == cell.resolve():
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cell / "requests.jsonl", target / "requests.jsonl")
        summary.update({"role": "baseline", "method": BASELINE_LABEL, "label": BASELINE_LABEL, "proposer": "none",
                        "k": 0, "copied_from": str(cell), "output_dir": str(target)})
        write_json_atomic(target / SUMMARY_JSON, summary)
        copied.append(name)
    if not copied:
        raise SpecscopeError(f"--baseline-cells {source}: no `specscope bench` cells under {runs}")
    return copied


def parse_levels(concurrency: str | None, rates: str | None) -> tuple[Level, ...]:
    """`--concurrency 1,4,16` / `--request-rate 0.5,2,inf` as levels (one of the two; default concurrency 1)."""
    if concurrency and rates:
        raise SpecscopeError("--concurrency and --request-rate: give one of them (a closed or an open load)")
    if rates:
        levels = []
        for text in rates.split(","):
            try:
                rate = float(text)
            except ValueError:
                rate = -1.0
            if not rate > 0 or math.isnan(rate):
                raise SpecscopeError(f"--request-rate '{rates}': give requests per second > 0 (or inf), "
                                     "comma-separated, e.g. 0.5,2,inf")
            levels.append(Level(rate=rate))
        return tuple(levels)
    try:
        values = sorted({int(v) for v in (concurrency or "1").split(",") if v.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise SpecscopeError(f"--concurrency '{concurrency}': give requests in flight as integers >= 1, "
                             "comma-separated, e.g. 1,4,16")
    return tuple(Level(concurrency=c) for c in values)
