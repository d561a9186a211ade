"""Server cells (`specscope bench`): throughput, speedup and latency against load, acceptance by draft position,
and the simulated bounds of their censored traces — beside the engine's cells, never mixed with them."""

from __future__ import annotations

import html

import pandas as pd

from specscope.analysis import figures
from specscope.analysis.page import Block, ReportContext, Section, num, x
from specscope.analysis.servers import closed_loop_cells, server_simulation, with_server_speedup


def servers_section(ctx: ReportContext) -> list[Section]:
    """Server cells (`specscope bench`): throughput and speedup against concurrency beside the engine's cells,
    latency percentiles, acceptance by draft position, and the simulation of their traces (lower bounds marked).
    Only in folders `specscope bench` wrote cells to (else no section)."""
    study, counter = ctx.study, ctx.counter
    if study.servers.empty:
        return []

    section = Section("Measured on servers (specscope bench)", intro=(
        "Cells measured over HTTP against an OpenAI-compatible server (vLLM, SGLang, TensorRT-LLM, llama.cpp or "
        "<code>specscope serve</code>): output tokens/s and latencies seen by the client, including HTTP and the "
        "server's own scheduling. Speedup divides by the baseline server (the same model without SD, "
        "<code>--baseline-endpoint</code>) at the same concurrency or rate. Acceptance comes from the engine's own "
        "per-request report where it gives one, else from its /metrics counters (column 'acceptance from')."))
    servers = study.servers
    table = with_server_speedup(servers)
    section.table(_server_table(table))
    settings = _server_settings(servers)
    closed = closed_loop_cells(servers)
    if not closed.empty:
        section.blocks.append(counter.figure(
            figures.throughput_vs_concurrency(servers, study.runs),
            "Output tokens/s against concurrency (requests in flight), one line per server label (solid); the "
            "study's engine cells of the same workload (<code>specscope run</code>, dashed) against their batch "
            "size, for comparison. " + html.escape(settings)))
        if table["speedup"].notna().any():
            section.blocks.append(counter.figure(
                figures.speedup_vs_concurrency(table),
                "Speedup of each SD server over the baseline server at the same concurrency; the dotted line is 1. "
                + html.escape(settings)))
        section.blocks.append(counter.figure(
            figures.latency_vs_concurrency(servers),
            "Latency percentiles against concurrency, measured by the client: time to first token, inter-token "
            "latency (gaps between streamed events that carried output; with SD one event may carry several "
            "tokens) and end-to-end; p50 solid, p90 dashed, p99 dotted. " + html.escape(settings)))
    has_positions = servers["acceptance_by_position"].map(lambda v: isinstance(v, list) and len(v) > 0)
    if has_positions.any():
        section.blocks.append(counter.figure(
            figures.server_acceptance_by_position(servers),
            "Acceptance rate of each draft position (1 = the first draft of a step), per SD cell: from the "
            "server's per-step arrays, the share of steps that proposed that draft and kept it; from /metrics "
            "counters (vLLM's per-position counter), accepted at that position per draft. " + html.escape(settings)))
    sim = server_simulation(study.simulation, study.traces)
    if sim is not None:
        shown = pd.DataFrame({
            "trace": sim["trace"], "proposers": sim["proposers"], "policy": sim["policy"],
            "batch size": sim["batch_size"],
            "simulated speedup": [("at least " if low else "") + x(v) for v, low in
                                  zip(sim["speedup"], sim["is_lower_bound"])]})
        section.paragraph(
            "Simulated from the servers' traces (their per-step arrays: acceptance lengths censored at k + 1, "
            "since a step that accepted all its drafts shows only a lower bound). Fixed k up to the recorded k is "
            "exact unless marked; the oracle and larger k read censored values and are lower bounds: "
            "<i>at least</i>.")
        section.table(shown)
    notes = sorted({f"{cell}: {note}" for cell, cell_notes in zip(servers["cell"], servers["notes"])
                    if isinstance(cell_notes, list) for note in cell_notes})
    if notes:
        section.blocks.append(Block("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"))
    section.paragraph(html.escape(settings), css="settings")
    return [section]


def _server_table(table: pd.DataFrame) -> pd.DataFrame:
    def ms(row, name):
        low, high = row[f"{name}_p50"], row[f"{name}_p99"]
        return "" if pd.isna(low) else f"{low:.0f} / {high:.0f}"

    rows = []
    for _, r in table.sort_values(["workload", "label", "concurrency", "request_rate"]).iterrows():
        version = f" {r['engine_version']}" if isinstance(r["engine_version"], str) else ""
        rows.append({
            "cell": r["cell"] + (" (partial)" if r["partial"] else ""), "workload": r["workload"],
            "label": r["label"], "engine": f"{r['engine']}{version}", "load": r["level"],
            "requests ok": f"{int(r['num_requests'] or 0) - int(r['num_errors'] or 0)}/{int(r['num_requests'] or 0)}",
            "out tok/s": num(r["throughput_tok_s"]), "req/s": num(r["request_throughput_rps"]),
            "goodput req/s": num(r["goodput_rps"]), "speedup": x(r["speedup"]),
            "TTFT p50 / p99 ms": ms(r, "ttft"), "ITL p50 / p99 ms": ms(r, "itl"), "E2E p50 / p99 ms": ms(r, "e2e"),
            "mean acc len": num(r["mean_acc_len"]),
            "acceptance from": r["sd_source"] or ("" if r["role"] == "baseline" else "none reported"),
        })
    return pd.DataFrame(rows)


def _server_settings(servers: pd.DataFrame) -> str:
    def values(col):
        return ", ".join(str(v) for v in sorted(servers[col].dropna().unique(), key=str)) or "?"
    partial = int(servers["partial"].sum())
    text = (f"Measured by specscope bench: model {values('model')} at {values('endpoint')} (engines "
            f"{values('engine')}); workloads {values('workload')}; API {values('api')}; labels {values('label')}; "
            f"loads {values('level')}; {len(servers)} cells")
    if partial:
        text += f", {partial} of them partial (stopped before every request finished)"
    return text + "."
