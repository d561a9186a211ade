"""Paper mode written the plain way: every copy of every request, one step at a time.

This is the executable specification of `--mode paper` (the published SpecDecode-Bench simulator's
semantics, see `paper.py`), written as directly as possible from that description so the tests can
check the vectorised replay against it, and the benchmark can time it against the fast path (it is
a Python loop over copies and steps, as the published simulator is). Plain decoding is simulated separately here (not as
fixed-0), n-gram misses are drawn per copy with `random.Random`, and the reference's in-loop KV
update before each copy's draft time is followed literally.

Policies understood: fixed-K and oracle (over one proposer, or oracle combine over several).
"""

from __future__ import annotations

import random
import re

from specscope.costs.model import CostModel
from specscope.formats.trace import Trace


def plain_copy_latencies(prompt_len: int, gen_len: int, batch: int, costs: CostModel) -> list[float]:
    """Latency of each of B identical copies decoded without speculation."""
    prefill = costs.target(batch * prompt_len, 0, batch)
    latency = [prefill + costs.overhead] * batch
    kv = batch * (prompt_len + 1)
    for _ in range(gen_len - 1):
        t = costs.target(batch, kv, batch)  # all copies are live until the last step
        kv += batch
        latency = [lat + t + costs.overhead for lat in latency]
    return latency


def sd_copy_latencies(
    prompt_len: int,
    acc: list[list[int]],
    policy: str,
    batch: int,
    costs: CostModel,
    proposers: tuple[str, ...],
    match_prob: dict[str, float],
    rng: random.Random,
) -> list[float]:
    """Latency of each of B identical copies with speculation, by the reference's rules."""
    gen_len = min(len(a) for a in acc)
    combined = [max(a[i] for a in acc) for i in range(gen_len)]
    fixed = re.fullmatch(r"fixed-(\d+)", policy)
    k_fixed = int(fixed.group(1)) if fixed else None
    forms = [costs.draft(p) for p in proposers] if k_fixed != 0 else []
    p_match = match_prob.get(proposers[0], 1.0) if len(proposers) == 1 else 1.0

    prefill = costs.target(batch * prompt_len, 0, batch)
    latency = [prefill + costs.overhead] * batch
    kv = batch * (prompt_len + 1)
    pos = [1] * batch
    live = [i for i in range(batch) if pos[i] < gen_len]
    while live:
        inputs = {}
        for i in live:
            acc_here = combined[pos[i] - 1]
            if k_fixed is None:
                inputs[i] = acc_here  # oracle: propose exactly what will be accepted
            elif k_fixed > 0 and p_match < 1.0 and acc_here == 1 and not rng.random() < p_match:
                inputs[i] = 1  # the n-gram found no match: nothing proposed
            else:
                inputs[i] = k_fixed + 1
        verify = costs.target(sum(inputs.values()), kv, len(live))
        still = []
        for i in live:
            if not forms:
                draft = 0.0
            elif len(forms) >= 2:
                draft = next(f for f in forms if f.scales_verify)(verify)
            elif not forms[0].scales_verify:
                draft = forms[0](inputs[i], kv, 1)  # per copy; kv as updated by the copies before this one
            else:
                draft = forms[0](verify) if inputs[i] > 1 else 0.0
            latency[i] += verify + draft + costs.overhead
            step = min(combined[pos[i] - 1], inputs[i])
            pos[i] += step
            kv += step
            if pos[i] >= gen_len:
                kv -= pos[i] + prompt_len
            else:
                still.append(i)
        live = still
    return latency


def reference_speedup(
    trace: Trace,
    proposers: tuple[str, ...],
    policy: str,
    batch: int,
    costs: CostModel,
    match_prob: dict[str, float] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """SD and plain throughputs (mean over request-batches of B * G / mean copy latency) and speedup."""
    rng = random.Random(seed)
    sd_tpt, ar_tpt = [], []
    for req in trace.requests:
        acc = [list(map(int, req.acc_len[p])) for p in proposers]
        gen_len = min(len(a) for a in acc)
        sd = sd_copy_latencies(req.prompt_len, acc, policy, batch, costs, proposers, match_prob or {}, rng)
        ar = plain_copy_latencies(req.prompt_len, gen_len, batch, costs)
        sd_tpt.append(batch * gen_len / (sum(sd) / batch))
        ar_tpt.append(batch * gen_len / (sum(ar) / batch))
    sd_mean, ar_mean = sum(sd_tpt) / len(sd_tpt), sum(ar_tpt) / len(ar_tpt)
    return {"sd_throughput": sd_mean, "ar_throughput": ar_mean, "speedup": sd_mean / ar_mean}
