"""`--mode serve`: what a serving engine does — distinct requests under continuous batching.

The serving model (README "Simulator"):
- All requests of the trace wait at time 0, in file order. Up to B run at once; whenever one
  finishes, the next waiting request takes its place at the next step.
- A step is one target forward pass over the prompts of the requests admitted in it (their
  prefill, which produces output token 0) plus, for every request already running, its last
  committed token and its k drafts: T(N, KV, R), KV = tokens held by the running requests, R = the
  requests in the step (admitted and running).
- Before it, each proposer that some running request asked for drafts runs once for the batch:
  a `linear` draft costs c_fixed + c_tok * (sum of k + 1 over its requests) + c_kv * KV (any step
  form: D(sum of k + 1, KV, its requests)), a `verify_fraction` one costs fraction x T. Combining proposers charges every one that ran.
  At a request's first step drafting with a proposer, the proposer also takes in the request's context
  (its prompt and what it generated so far): the form's `catch_up` of those tokens (a draft model's
  pass over the prompt; 0 for forms without one). Under a fixed k that is the request's first decode
  step. (A feature head, EAGLE / MTP, runs for every decoding sequence every step in the engine, so
  under an adaptive policy it takes the prompt in at the first decode step even where the policy does
  not draft then; the simulator charges it when the request first drafts with it, over what it holds
  by then — an approximation for heads under adaptive policies.)
- Plus the per-step overhead, and `switching` per request whose proposer changed, and under an online
  (adaptive) policy its own time per step (`CostModel.decision_seconds` of the decoding requests).
- A running request commits min(acc_len, k + 1) tokens per step and leaves once it has G tokens.
- Throughput = generated tokens / makespan.

Fast path: with a policy that does not look at the batch, a request takes the same steps whatever it
is batched with (its `Trajectory`), one per global step, so the schedule follows from step counts
alone: request r is admitted at step a_r (FIFO into the earliest free slot) and decodes at steps
a_r + 1 ... a_r + n_r. Per-step sums are then bincounts. `serve_loop` runs the same model step by
step for batch-aware policies, and the tests check the two agree.

n-gram misses are drawn from `miss_u`, one uniform per request and output position, shared with
`serve_loop`, so both paths see the same misses.
"""

from __future__ import annotations

import heapq

import numpy as np

from specscope.costs.model import CostModel
from specscope.policy.base import Policy
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.result import ReplayResult
from specscope.simulator.trajectory import Trajectory
from specscope.simulator.trees import draft_form, drafted_tokens


def admission_steps(steps: np.ndarray, batch_size: int) -> np.ndarray:
    """Global step at which each request is admitted, FIFO into `batch_size` slots.

    A request admitted at step a decodes at steps a+1 .. a+steps and frees its slot for step a+steps+1.
    """
    free = [0] * min(batch_size, len(steps))
    admit = np.empty(len(steps), dtype=np.int64)
    for r, n in enumerate(steps.tolist()):
        t = heapq.heappop(free)
        admit[r] = t
        heapq.heappush(free, t + n + 1)
    return admit


def first_draft_catch_up(form, uses: np.ndarray, request: np.ndarray, step: np.ndarray, context: np.ndarray,
                         total_steps: int) -> np.ndarray | float:
    """Per global step, the seconds drafter `form` spends taking in the context of the requests whose first step
    drafting with it that is (`uses`: request-steps drafting with it, request-major; `context`: tokens each
    request holds then). 0 where the form has no catch-up (`StepCost.catches_up`)."""
    drafting = np.flatnonzero(uses)
    if not getattr(form, "catches_up", False) or not drafting.size:
        return 0.0
    first = drafting[np.unique(request[drafting], return_index=True)[1]]  # each request's first drafting step
    return np.bincount(step[first], form.catch_up(context[first]), total_steps)


def serve_replay(
    rt: ReplayTrace,
    traj: Trajectory,
    policy: Policy,
    costs: CostModel,
    batch_size: int,
    match_prob: np.ndarray,
    miss_u: np.ndarray,
) -> ReplayResult:
    """Price a trajectory under continuous batching with up to `batch_size` running requests."""
    prompt = rt.prompt_len.astype(np.float64)
    admit = admission_steps(traj.steps, batch_size)
    total_steps = int((admit + traj.steps).max()) + 1
    r, pos, k, q = traj.request, traj.position, traj.k, traj.proposer
    g = admit[r] + 1 + (np.arange(len(r)) - traj.start[r])  # global step of each request-step

    missed = traj.may_miss & (miss_u[rt.rows(r, pos)] >= match_prob[q])
    inputs = np.where(missed, 1, k + 1)  # input length: last committed token + drafts
    tokens = np.bincount(admit, prompt, total_steps) + np.bincount(g, inputs, total_steps)
    kv = np.bincount(g, prompt[r] + pos, total_steps)
    seqs = np.bincount(admit, minlength=total_steps) + np.bincount(g, minlength=total_steps)  # rows of each step
    verify = costs.target(tokens, kv, seqs)
    draft = np.zeros(total_steps)
    for index, name in enumerate(rt.proposers):
        uses = (k > 0) & (q == index)
        if not uses.any():
            continue
        drafting = np.bincount(g[uses], minlength=total_steps)
        ran = drafting > 0
        form = draft_form(costs, name)
        if form.scales_verify:
            cost = form(verify)
        else:
            drafted = drafted_tokens(name, k, inputs)  # the input length; a tree's drafting work (trees.py)
            cost = form(np.bincount(g[uses], drafted[uses], total_steps), kv, drafting)
        draft += np.where(ran, cost, 0.0) + first_draft_catch_up(form, uses, r, g, prompt[r] + pos, total_steps)
    extra = costs.switching * np.bincount(g, traj.switched.astype(np.float64), total_steps)
    if getattr(policy, "online", False):  # an online policy's own time per step, for the sequences decoding in it
        extra = extra + costs.decision_seconds(np.bincount(g, minlength=total_steps),
                                               np.bincount(g[k > 0], minlength=total_steps) > 0)
    per_step = verify + draft + costs.overhead + extra

    makespan = float(per_step.sum())
    finish = np.cumsum(per_step)[admit + traj.steps]
    generated = float(rt.gen_len.sum())
    return ReplayResult(
        generated_tokens=generated,
        throughput=generated / makespan,
        time_s=makespan,
        target_s=float(verify.sum()),
        draft_s=float(draft.sum()),
        overhead_s=float(costs.overhead * total_steps + extra.sum()),
        mean_latency_s=float(finish.mean()),
        steps=float(len(r)),
        committed=float(traj.committed.sum()),
        proposed=float(np.sum(inputs - 1)),
        rejected=float(np.sum(inputs - traj.committed)),
    )
