#!/usr/bin/env python
"""Benchmark: how well a drafter's confidence predicts acceptance, from traces that record it.

    .venv/bin/python benchmarks/bench_confidence.py benchmarks/traces/*.jsonl [--proposer draft]
        [--off-path 60 --draft-model self:24]

Per trace (workload), at every output position i >= 1 with a recorded confidence: whether the
proposer's first draft there is accepted (acc_len[i] >= 2) against its confidence — the AUC (the
chance an accepted draft was more confident than a rejected one; 0.5 = no signal), and the
acceptance rate per confidence bin (`specscope.policy.confidence.CONFIDENCE_EDGES`). Reads the
traces only (no model).

--off-path N also loads the default model (a greedy self:L draft, as the traces' `draft` proposer)
and, at N rejected positions per trace (seeded), drafts 8 more tokens after the rejected one,
continuing the draft's own chain: the confidences the drafter really has once its chain has left
the output, side by side with the ones the trace recorded at those positions — what the simulator's
replays stand in for them (`specscope/simulator/replay_trace.py`).

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from specscope.policy.confidence import CONFIDENCE_EDGES, confidence_bins
from specscope.errors import SpecscopeError
from specscope.simulator.replay_trace import ReplayTrace
from specscope.formats.trace import read_trace

DEPTH = 8  # drafts past a rejection, for --off-path


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the labels `positive` (ties count half)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks over ties
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    pos, neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg)) if pos and neg else float("nan")


def first_draft_table(trace, proposer: str) -> dict:
    """AUC and per-bin acceptance of the first draft at every position with a recorded confidence."""
    rt = ReplayTrace.from_trace(trace, (proposer,))
    if rt.confidence is None:
        raise SystemExit(f"{trace.name}: records no draft confidences for '{proposer}'; record the trace again with "
                         "`specscope trace` (it writes draft_confidence for the draft model and the heads)")
    inner = np.ones(len(rt.acc), dtype=bool)
    inner[rt.offset] = False  # position 0 is the prefill's token,
    inner[rt.offset + rt.gen_len - 1] = False  # and the last commits one token whatever was drafted
    conf, hit = rt.confidence[inner, 0], rt.acc[inner, 0] >= 2
    recorded = ~np.isnan(conf)
    conf, hit = conf[recorded], hit[recorded]
    edges = np.asarray(CONFIDENCE_EDGES)
    bins = confidence_bins(conf)
    table = [{"bin": f"[{edges[b]:g}, {edges[b + 1]:g})", "positions": int((bins == b).sum()),
              "accepted": round(float(hit[bins == b].mean()), 3) if (bins == b).any() else None}
             for b in range(len(edges) - 1)]
    return {"positions": int(len(conf)), "accepted": round(float(hit.mean()), 3), "auc": round(auc(conf, hit), 3),
            "bins": table}


def off_path(trace, proposer: str, count: int, draft_model: str, seed: int = 0) -> dict:
    """Mean confidence of DEPTH drafts past `count` rejections, vs the trace's at the same positions."""
    import torch

    from specscope.engine.loading import load_model
    from specscope.engine.proposers.draft import parse_self_draft

    target, _ = load_model(None)
    layers = parse_self_draft(draft_model, target.config.num_layers)
    if layers is None:
        raise SystemExit(f"--draft-model {draft_model}: --off-path drafts with the target's first L layers; "
                         "pass --draft-model self:L (the traces' draft, e.g. self:24)")
    rt = ReplayTrace.from_trace(trace, (proposer,))
    stored = rt.confidence[:, 0]  # the trace's confidences, one row per output position
    rng = np.random.default_rng(seed)
    places = [(r, i) for r, req in enumerate(trace.requests) if req.draft_confidence
              for i in range(1, len(req.acc_len[proposer]) - DEPTH - 2)
              if req.acc_len[proposer][i] <= trace.k_max and i + req.acc_len[proposer][i] + DEPTH < len(req.acc_len[proposer])]
    picked = rng.choice(len(places), size=min(count, len(places)), replace=False)
    real, recorded = [], []
    with torch.inference_mode():
        for index in picked:
            r, i = places[index]
            req = trace.requests[r]
            miss = i + int(req.acc_len[proposer][i]) - 1  # output position of the first rejected draft
            context = list(req.prompt_token_ids) + list(req.output_token_ids[:miss])
            cache = target.new_cache(1, len(context) + DEPTH + 2, num_layers=layers)
            chunk, sure = context, []
            for _ in range(DEPTH + 1):  # the rejected draft, then DEPTH drafts of the draft's own chain
                out = target.forward_chunks(cache, [0], [torch.tensor(chunk)], num_layers=layers, num_logits=[1])
                cache.lengths[0] += len(chunk)
                probs = torch.softmax(out.logits[0][-1].float(), dim=-1)
                top = int(probs.argmax())
                sure.append(float(probs[top]))
                chunk = [top]
            real.append(sure[1:])
            recorded.append(np.nan_to_num(stored[rt.offset[r] + miss + 1 : rt.offset[r] + miss + 1 + DEPTH], nan=1.0))
    real, recorded = np.array(real), np.array(recorded)
    return {"rejections": int(len(real)), "off_path_mean": round(float(real.mean()), 3),
            "recorded_mean": round(float(recorded.mean()), 3),
            "off_path_by_depth": np.round(real.mean(axis=0), 3).tolist(),
            "recorded_by_depth": np.round(recorded.mean(axis=0), 3).tolist()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--proposer", default="draft")
    ap.add_argument("--off-path", type=int, default=0, help="rejections per trace to draft past (loads the model)")
    ap.add_argument("--draft-model", default="self:24")
    args = ap.parse_args(argv)
    results = []
    for path in args.traces:
        try:
            trace = read_trace(path)
            row = {"trace": path, "workload": trace.workload, **first_draft_table(trace, args.proposer)}
        except SpecscopeError as exc:
            raise SystemExit(f"specscope: error: {exc}") from None
        print(f"== {trace.workload or path}: {row['positions']} positions, accepted {row['accepted']:.3f}, "
              f"AUC {row['auc']:.3f}")
        for b in row["bins"]:
            print(f"   {b['bin']:>12}  {b['positions']:6d}  accepted {b['accepted'] if b['accepted'] is not None else '-'}")
        if args.off_path:
            row["off_path"] = off_path(trace, args.proposer, args.off_path, args.draft_model)
            o = row["off_path"]
            print(f"   past a rejection ({o['rejections']}): mean confidence {o['off_path_mean']:.3f}, "
                  f"recorded there {o['recorded_mean']:.3f}")
        results.append(row)
    print(json.dumps({"confidence": results}))


if __name__ == "__main__":
    main()
