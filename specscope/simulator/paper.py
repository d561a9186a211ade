"""`--mode paper`: the published SpecDecode-Bench simulator's semantics, vectorised.

The model (replicated exactly, quirks included; see README "Simulator"): every request of the file
is simulated on its own; for batch size B, B identical copies of it form one batch.

- Prefill: one target pass over all B prompts, T(B * prompt_len, KV = 0); each copy's latency
  starts at prefill + overhead, and the batch holds B * (prompt_len + 1) KV tokens.
- Each step every live copy proposes: input length = k + 1 (fixed-k) or acc_len[pos - 1] (oracle).
  Verification costs T(sum of input lengths, KV); each copy's latency grows by verify + its own
  draft time + overhead; the copy advances by min(acc_len[pos - 1], input length) and KV grows by
  the same. A copy is done once pos >= G and frees prompt_len + pos KV tokens.
- Draft time of a `linear` proposer (EAGLE): the linear draft form with the copy's input length and
  the batch KV *as updated by the copies before it in the same step* (the reference updates KV
  inside its per-copy loop). The reference charges it on every step, even one proposing nothing (its
  oracle at acc_len 1); policies that are not reference policies (`reference_pricing = False`, the
  adaptive ones) are charged only on steps that propose. Of a `verify_fraction` proposer (n-gram): fraction x verify time,
  except that a copy with input length 1 has none. Combine (>= 2 proposers): fraction x verify time
  on every step, whatever was proposed (a quirk of the reference, replicated here only).
- n-gram fixed-k: where its acc_len is 1 a copy found no match with probability 1 - p, proposing
  nothing (input length 1).
- Per request-batch: throughput = B * G / mean copy latency; the reported speedup is the mean SD
  throughput over requests / the mean plain-decoding throughput.

Speed: all copies of a request are always at the same position (a miss changes a copy's input
length, never what it commits), so one lane per request stands for its B copies: the number of
copies that miss is one binomial draw per step, and the in-loop KV quirk averages in closed form,
copy i seeing KV + i * delta, i.e. KV + delta * (B - 1) / 2 on average.
"""

from __future__ import annotations

import numpy as np

from specscope.costs.model import CostModel
from specscope.errors import SpecscopeError
from specscope.policy.base import Policy
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.result import ReplayResult
from specscope.simulator.trajectory import Trajectory
from specscope.simulator.trees import draft_form, drafted_tokens, tree_shape


def paper_replay(
    rt: ReplayTrace,
    traj: Trajectory,
    policy: Policy,
    costs: CostModel,
    batch_size: int,
    match_prob: np.ndarray,
    rng: np.random.Generator,
) -> ReplayResult:
    """Price a trajectory at batch size B with the published simulator's rules."""
    b = int(batch_size)
    num = rt.num_requests
    prompt = rt.prompt_len.astype(np.float64)
    r = traj.request
    pos = traj.position
    k = traj.k
    committed = traj.committed
    prompt_s = prompt[r]

    prefill = costs.target(b * prompt, 0.0, b)  # [R]
    kv = b * (prompt_s + pos)  # [S] batch KV at the start of each step
    proposing = np.full(len(r), float(b))  # copies that propose their k drafts
    if traj.may_miss.any():
        proposing[traj.may_miss] = rng.binomial(b, match_prob[traj.proposer[traj.may_miss]])
    tokens = b + k * proposing  # [S] sum of the copies' input lengths
    verify = costs.target(tokens, kv, b)
    draft = _draft_per_copy(rt, traj, policy, costs, b, verify, tokens, proposing, kv, prompt_s)
    extra = costs.switching * traj.switched
    per_step = verify + draft + costs.overhead + extra

    latency = prefill + costs.overhead + np.bincount(r, per_step, minlength=num)  # mean copy latency
    gen = rt.gen_len.astype(np.float64)
    return ReplayResult(
        generated_tokens=float(b * gen.sum()),
        throughput=float(np.mean(b * gen / latency)),
        time_s=float(latency.sum()),
        target_s=float(prefill.sum() + verify.sum()),
        draft_s=float(draft.sum()),
        overhead_s=float(costs.overhead * (num + len(r)) + extra.sum()),
        mean_latency_s=float(latency.mean()),
        steps=float(len(r)),
        committed=float(committed.sum()),
        proposed=float(np.sum(k * proposing) / b),
        rejected=float(np.sum(tokens - b * committed) / b),
    )


def _draft_per_copy(rt, traj, policy, costs, b, verify, tokens, proposing, kv, prompt_s) -> np.ndarray:
    """Mean draft time per copy at each step, by the reference's rules."""
    if not policy.speculates:
        return np.zeros_like(verify)
    forms = [draft_form(costs, name) for name in rt.proposers]
    if len(forms) >= 2:
        fractions = [f for f in forms if f.scales_verify]
        if not fractions:
            raise SpecscopeError(
                f"paper mode prices combine ({','.join(rt.proposers)}) as the reference does, with the "
                "n-gram verify fraction, but none of these proposers has a verify_fraction draft cost; "
                "use --mode serve"
            )
        return fractions[0](verify)
    form = forms[0]
    if not form.scales_verify:
        delta = np.where(traj.finishes, -(prompt_s + traj.position), traj.committed)
        per_copy = tokens / b if tree_shape(rt.proposers[0]) is None else drafted_tokens(rt.proposers[0], traj.k, tokens / b)
        draft = form(per_copy, kv + delta * (b - 1) / 2.0, 1)  # per copy
        return draft if policy.reference_pricing else np.where(traj.k > 0, draft, 0.0)
    return form(verify) * np.where(traj.k > 0, proposing / b, 0.0)
