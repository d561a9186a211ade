"""Evidence from the per-position acceptance traces: by position and request, prompt overlap, two proposers."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from specscope.analysis import figures, metrics
from specscope.analysis.page import Block, ReportContext, Section, num, pct
from specscope.analysis.sections.common import no_traces, trace_settings
from specscope.formats.trace import Trace


def acceptance_by_position_section(ctx: ReportContext) -> Section:
    section = Section("Acceptance length by position and request")
    if not ctx.study.traces:
        section.missing = no_traces()
        return section
    for trace in ctx.study.traces:
        matrices = {p: metrics.acc_len_matrix(trace, p, figures.HEATMAP_MAX_POSITIONS) for p in trace.proposers}
        longest = max(m.shape[1] for m in matrices.values())
        cut = (f" Positions beyond {figures.HEATMAP_MAX_POSITIONS} are not drawn."
               if longest >= figures.HEATMAP_MAX_POSITIONS else "")
        section.blocks.append(ctx.counter.figure(
            figures.acc_heatmap(matrices, trace.k_max),
            "Per-position acceptance trace: the acceptance length (tokens a step starting at that output position "
            "would commit, with lookahead k_max) for every request (rows, numbered from the longest output) and "
            f"output position (columns); blank past a request's end; one panel per proposer.{cut} "
            + html.escape(trace_settings(trace))))
        curves = {p: metrics.mean_acc_by_position(trace, p) for p in trace.proposers}
        section.blocks.append(ctx.counter.figure(
            figures.acc_by_position(curves),
            "Mean acceptance length at each output position, one line per output-length group (requests split into "
            "groups of equal size by output length), smoothed by a centred rolling mean over about 1/50 of the "
            "positions and drawn where at least 20% of the group's requests (and 3) reach the position; one panel "
            "per proposer." + _one_group_note(trace) + " " + html.escape(trace_settings(trace))))
    return section


def _one_group_note(trace: Trace) -> str:
    """Why there is a single length group, when there is."""
    lengths = {len(r.acc_len[trace.proposers[0]]) for r in trace.requests}
    if len(lengths) != 1:
        return ""
    return (f" Every request's output has {lengths.pop()} tokens, so there is one length group: trace with a "
            "higher output limit (`[trace] max_new_tokens`) to see acceptance by output length.")


def trace_acceptance_boxplots(ctx: ReportContext) -> Block:
    table = metrics.trace_requests(ctx.study.traces)
    return ctx.counter.figure(
        figures.acc_boxplots(table, "proposer", "mean acceptance length\nover output positions"),
        "From traces: distribution over requests of each request's mean per-position acceptance length (lookahead "
        "k_max) per proposer; one panel per workload; box = quartiles, whiskers = 1.5 IQR, triangle = mean. "
        + html.escape(" ".join(trace_settings(t) for t in ctx.study.traces)))


def bleu_overlap_section(ctx: ReportContext) -> Section:
    section = Section("Prompt-output overlap and n-gram", intro=(
        "How n-gram drafting compares with the other proposer as the output copies more from the prompt. "
        "Source: traces. Per request, the ratio of n-gram's to the other proposer's tokens committed per "
        "step under the oracle policy (each step proposes exactly acceptance length - 1 tokens): n-gram's speedup "
        "relative to the other proposer when a step costs the same whichever proposer drafted. It ignores "
        "draft cost, which favours the other proposer (n-gram drafts almost for free)."))
    traces = ctx.study.traces
    pairs = [(t, metrics.proposer_pair(t.proposers)) for t in traces]
    usable = [(t, pair) for t, pair in pairs if pair and metrics.is_ngram(pair[0])]
    if not usable:
        section.missing = (no_traces() if not traces else
                           "no trace holds n-gram and another proposer; collect one with both, e.g. "
                           "`specscope trace --proposers ngram,draft`.")
        return section
    for trace, (ngram, other) in usable:
        per_request, per_bin = metrics.bleu_bins(metrics.trace_requests([trace]), ngram, other)
        capped = brevity_capped(trace, per_bin)
        if capped:
            section.paragraph(f"{html.escape(trace.name)}: not drawn. {html.escape(capped)}")
            continue
        section.blocks.append(ctx.counter.figure(
            figures.bleu_vs_ratio(per_request, per_bin, ngram, other),
            f"{html.escape(ngram)} / {html.escape(other)} oracle tokens per step (log scale; above 1 = "
            "n-gram faster) against BLEU-4 of the output against the prompt, computed on token ids "
            "(sentence BLEU, exp smoothing, brevity penalty); grey points are requests, red the mean per "
            "BLEU bin with its request count. " + html.escape(trace_settings(trace))))
        section.table(pd.DataFrame({
            "BLEU-4 bin": per_bin["bin"], "requests": per_bin["requests"],
            "mean ratio": per_bin["mean_ratio"].map(num), "median ratio": per_bin["median_ratio"].map(num),
            f"{ngram} wins": per_bin["ngram_wins"].map(lambda v: pct(100 * v).lstrip("+")),
        }))
    return section


def brevity_capped(trace: Trace, per_bin: pd.DataFrame) -> str:
    """Why a trace's BLEU bins cannot separate requests ("" when they can): every request in one bin while the
    outputs are much shorter than the prompts, so BLEU-4's brevity penalty alone caps every score."""
    if (per_bin["requests"].fillna(0) > 0).sum() > 1:
        return ""
    outputs = np.array([len(r.output_token_ids) for r in trace.requests])
    prompts = np.array([len(r.prompt_token_ids) for r in trace.requests])
    if not len(outputs) or outputs.min() == 0 or np.median(outputs) >= np.median(prompts):
        return ""
    cap = float(np.max(np.exp(1 - prompts / np.maximum(outputs, 1)) * (outputs < prompts) + (outputs >= prompts)))
    return (f"Every request falls in one BLEU-4 bin: its outputs (median {int(np.median(outputs))} tokens) are much "
            f"shorter than its prompts (median {int(np.median(prompts))} tokens), and BLEU-4's brevity penalty alone "
            f"caps every score at {cap:.2f} whatever the output copies. Trace longer outputs (`[trace] "
            "max_new_tokens`, or `specscope trace --max-new-tokens`) for this panel.")


def proposer_difference_section(ctx: ReportContext) -> Section:
    section = Section("Per-position difference between two proposers")
    traces = ctx.study.traces
    pairs = [(t, metrics.proposer_pair(t.proposers)) for t in traces]
    usable = [(t, pair) for t, pair in pairs if pair]
    if not usable:
        section.missing = (no_traces() if not traces else
                           "every trace holds a single proposer; collect one with two, e.g. "
                           "`specscope trace --proposers ngram,draft`.")
        return section
    for trace, (a, b) in usable:
        table = metrics.position_difference(trace, a, b)
        section.blocks.append(ctx.counter.figure(
            figures.position_difference(table, a, b),
            f"Left: mean over requests of the acceptance length of {html.escape(a)} minus {html.escape(b)} at each "
            "output position (above 0: the first proposer commits more there). Right: share of requests where each "
            "proposer's acceptance length is strictly longer (ties are neither). Both smoothed by a centred rolling "
            "mean over about 1/50 of the positions, drawn where at least 20% of the requests (and 3) reach the "
            "position. " + html.escape(trace_settings(trace))))
    return section
