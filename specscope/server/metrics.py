"""Prometheus: the counters `specscope serve` exposes at /metrics, and the scraper `bench` reads any server's with.

Exposed (one registry per server; `model_name` label as vLLM has it):

    specscope:spec_decode_num_drafts_total                       verification steps of finished requests
    specscope:spec_decode_num_draft_tokens_total                 draft tokens proposed
    specscope:spec_decode_num_accepted_tokens_total              draft tokens accepted
    specscope:spec_decode_num_accepted_tokens_per_pos_total{position="j"}   steps whose draft j (0-based) was accepted
    specscope:prompt_tokens_total, specscope:generation_tokens_total
    specscope:request_success_total{finished_reason="stop|length|abort|error"}
    specscope:num_requests_running, specscope:num_requests_waiting (gauges)

The names are vLLM's (`vllm:spec_decode_num_drafts_total`, ...) under a `specscope:` prefix: a metric's
prefix says which engine produced it, so a dashboard or alert written for vLLM does not silently read
another engine's numbers, while a client that matches on the suffix (this module's `scrape`) reads
vLLM, llama.cpp (`llamacpp:`) and specscope alike. The counters advance when a request finishes (its
per-request metrics summed, so they reconcile exactly with the responses' `metrics.speculative_decoding`);
vLLM advances them every step, which differs only while requests are in flight.

Scraping (`parse_counters`, `difference`): the four spec-decode counters under any prefix, summed over
every label but `position`; SGLang exposes gauges instead (`sglang:spec_accept_length`,
`sglang:spec_accept_rate`): the last scheduler batch's values, not totals, so they are recorded as read
after a cell and never differenced.
"""

from __future__ import annotations

import re

SPEC_SUFFIXES = {  # counter (sample name without prefix) -> field of the scraped record
    "spec_decode_num_drafts_total": "num_drafts",
    "spec_decode_num_draft_tokens_total": "num_draft_tokens",
    "spec_decode_num_accepted_tokens_total": "num_accepted_tokens",
}
PER_POS_SUFFIX = "spec_decode_num_accepted_tokens_per_pos_total"
SGLANG_GAUGES = {"sglang:spec_accept_length": "sglang_spec_accept_length",
                 "sglang:spec_accept_rate": "sglang_spec_accept_rate"}
PREFIX = "specscope"


class ServerMetrics:
    """The counters of one `specscope serve` (its own registry, so several servers can live in one process)."""

    def __init__(self, model_name: str, num_spec_tokens: int):
        from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

        disable_created_metrics()  # no `_created` series beside each counter (vLLM turns them off too)
        self.registry = CollectorRegistry()
        self.model_name, self.num_spec_tokens = model_name, num_spec_tokens
        labels = ["model_name"]

        def counter(name, doc, extra=()):
            return Counter(f"{PREFIX}:{name}", doc, labels + list(extra), registry=self.registry)

        self.drafts = counter("spec_decode_num_drafts", "Verification steps of finished requests (every decode step).")
        self.draft_tokens = counter("spec_decode_num_draft_tokens", "Draft tokens proposed.")
        self.accepted = counter("spec_decode_num_accepted_tokens", "Draft tokens accepted.")
        self.per_pos = counter("spec_decode_num_accepted_tokens_per_pos",
                               "Steps whose draft at this position (0-based) was accepted.", ["position"])
        self.prompt_tokens = counter("prompt_tokens", "Prompt tokens of finished requests.")
        self.generation_tokens = counter("generation_tokens", "Output tokens of finished requests.")
        self.success = counter("request_success", "Finished requests by finish reason.", ["finished_reason"])
        self.running = Gauge(f"{PREFIX}:num_requests_running", "Requests holding a batch slot.", labels,
                             registry=self.registry)
        self.waiting = Gauge(f"{PREFIX}:num_requests_waiting", "Requests waiting for a slot.", labels,
                             registry=self.registry)
        for j in range(num_spec_tokens):  # present from the start, as zeros
            self.per_pos.labels(model_name, str(j))

    def observe_finished(self, seq) -> None:
        """Count a finished engine sequence (called on the engine thread)."""
        name = self.model_name
        reason = {"cancelled": "abort"}.get(seq.finish_reason, seq.finish_reason or "error")
        self.success.labels(name, reason).inc()
        if seq.error:
            return
        self.prompt_tokens.labels(name).inc(seq.prompt_len)
        self.generation_tokens.labels(name).inc(seq.num_output)
        if self.num_spec_tokens < 1:
            return
        self.drafts.labels(name).inc(len(seq.accepted))
        self.draft_tokens.labels(name).inc(sum(seq.proposed))
        self.accepted.labels(name).inc(sum(seq.accepted))
        for j in range(max(seq.accepted, default=0)):
            self.per_pos.labels(name, str(j)).inc(sum(1 for a in seq.accepted if a > j))

    def exposition(self, running: int, waiting: int) -> bytes:
        from prometheus_client import generate_latest

        self.running.labels(self.model_name).set(running)
        self.waiting.labels(self.model_name).set(waiting)
        return generate_latest(self.registry)


# ------------------------------------------------------------------------------------------------ scraping


def parse_counters(text: str) -> dict:
    """The spec-decode counters (and SGLang's gauges) in a /metrics text; raises ValueError if it is not one.

    Returns {"prefix": "vllm" | "llamacpp" | "specscope" | None, "num_drafts", "num_draft_tokens",
    "num_accepted_tokens", "accepted_per_pos": {position: count}, "sglang_spec_accept_length", ...}:
    fields the server does not expose are absent.
    """
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {}
    per_pos: dict[int, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name in SGLANG_GAUGES:
                out[SGLANG_GAUGES[name]] = float(sample.value)
                continue
            prefix, _, rest = name.partition(":")
            if not rest:
                continue
            if rest == PER_POS_SUFFIX:
                position = sample.labels.get("position")
                if position is not None and re.fullmatch(r"\d+", position):
                    per_pos[int(position)] = per_pos.get(int(position), 0.0) + float(sample.value)
                    out.setdefault("prefix", prefix)
            elif rest in SPEC_SUFFIXES:
                key = SPEC_SUFFIXES[rest]
                out[key] = out.get(key, 0.0) + float(sample.value)
                out.setdefault("prefix", prefix)
    if per_pos:
        out["accepted_per_pos"] = dict(sorted(per_pos.items()))
    return out


def difference(before: dict, after: dict) -> dict | None:
    """What a cell added to the counters (after - before), with the acceptance they imply; None without counters.

    mean_acc_len = 1 + accepted / drafts (vLLM's: its drafts are the steps that drafted), acceptance_rate =
    accepted / draft tokens, acceptance_by_position[j] = steps accepting draft j / drafts.
    """
    gauges = {key: after[key] for key in SGLANG_GAUGES.values() if key in after}  # last batch's, not differenced
    if "num_drafts" not in after:
        return gauges or None
    out = {"prefix": after.get("prefix"), **gauges}
    for key in SPEC_SUFFIXES.values():
        if key in after:
            out[key] = after[key] - before.get(key, 0.0)
    drafts, tokens, accepted = out.get("num_drafts"), out.get("num_draft_tokens"), out.get("num_accepted_tokens")
    out["mean_acc_len"] = 1.0 + accepted / drafts if drafts and accepted is not None else None
    out["acceptance_rate"] = accepted / tokens if tokens and accepted is not None else None
    pos_after, pos_before = after.get("accepted_per_pos", {}), before.get("accepted_per_pos", {})
    if pos_after and drafts:
        out["acceptance_by_position"] = [(pos_after[j] - pos_before.get(j, 0.0)) / drafts for j in sorted(pos_after)]
    return out
