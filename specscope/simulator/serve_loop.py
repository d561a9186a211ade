"""`--mode serve` as an explicit step loop, for policies that look at the batch (`batch_aware`).

Same serving model as `serve.py` (read its docstring), simulated one global step at a time over up
to B slots, so a policy can see the batch size and the batch's KV when it decides. Slower than the
schedule-based fast path (one Python iteration per step), and equal to it for batch-unaware
policies — which the tests check.
"""

from __future__ import annotations

import numpy as np

from specscope.costs.model import CostModel
from specscope.policy.base import Policy, Decision, StepView
from specscope.simulator.replay_trace import ReplayTrace
from specscope.simulator.result import ReplayResult
from specscope.simulator.trajectory import check_decision, stop_drafting
from specscope.simulator.trees import draft_form, drafted_tokens


def serve_loop(
    rt: ReplayTrace,
    policy: Policy,
    costs: CostModel,
    batch_size: int,
    match_prob: np.ndarray,
    miss_u: np.ndarray,
) -> ReplayResult:
    """Continuous batching, step by step; the policy is asked once per step for all running requests."""
    num = rt.num_requests
    prompt = rt.prompt_len
    policy.reset(num)
    slot_req = np.full(min(batch_size, num), -1, dtype=np.int64)
    slot_pos = np.zeros(len(slot_req), dtype=np.int64)
    last_proposer = np.full(num, -1, dtype=np.int64)
    caught_up = np.zeros((num, len(rt.proposers)), dtype=bool)  # the proposer has taken in the request's context
    finish = np.zeros(num)
    next_req = 0
    clock = target_s = draft_s = overhead_s = 0.0
    steps = committed_total = proposed = rejected = 0
    while True:
        running = np.flatnonzero(slot_req >= 0)  # prefilled before this step: they decode now
        free = np.flatnonzero(slot_req < 0)
        admit_slots = free[: num - next_req]
        admitted = np.arange(next_req, next_req + len(admit_slots))
        next_req += len(admit_slots)
        if not running.size and not admit_slots.size:
            break
        req, pos = slot_req[running], slot_pos[running]
        kv = float(np.sum(prompt[req] + pos))
        tokens = float(prompt[admitted].sum())
        step_draft = switches = 0.0
        if running.size:
            acc_now = rt.acc[rt.rows(req, pos)]
            view = StepView(req, pos, acc_now, batch_size, np.full(len(req), kv), rt)
            decision = policy.decide(view)
            k, q = check_decision(decision, len(req), len(rt.proposers), policy)
            k = stop_drafting(rt, policy, view, rt.rows(req, pos), rt.capped(rt.rows(req, pos), k, q), q)
            chosen = acc_now[np.arange(len(req)), q]
            commit = np.minimum(chosen, k + 1)
            drafting = k > 0
            may_miss = drafting & (chosen == 1) & (match_prob[q] < 1.0)
            missed = may_miss & (miss_u[rt.rows(req, pos)] >= match_prob[q])
            inputs = np.where(missed, 1, k + 1)
            tokens += float(inputs.sum())
            prev = last_proposer[req]
            switches = float(np.sum(drafting & (prev >= 0) & (prev != q)))
            last_proposer[req[drafting]] = q[drafting]
            policy.observe(view, Decision(k, q), commit)
            steps += len(req)
            committed_total += int(commit.sum())
            proposed += int(np.sum(inputs - 1))
            rejected += int(np.sum(inputs - commit))
        verify = float(costs.target(tokens, kv, len(running) + len(admit_slots)))
        if running.size:
            for index, name in enumerate(rt.proposers):
                uses = drafting & (q == index)
                if uses.any():
                    form = draft_form(costs, name)
                    step_draft += float(form(verify) if form.scales_verify
                                        else form(float(drafted_tokens(name, k, inputs)[uses].sum()), kv,
                                                  int(uses.sum())))
                    if getattr(form, "catches_up", False):
                        new = uses & ~caught_up[req, index]  # first drafting step: the drafter takes in the context
                        step_draft += float(np.sum(form.catch_up(prompt[req[new]] + pos[new])))
                        caught_up[req[new], index] = True
        step_overhead = costs.overhead + costs.switching * switches
        if getattr(policy, "online", False):  # its own time deciding for the running sequences and learning from the step
            step_overhead += costs.decision_seconds(len(running), bool(running.size and np.any(drafting)))
        clock += verify + step_draft + step_overhead
        target_s += verify
        draft_s += step_draft
        overhead_s += step_overhead
        if running.size:
            slot_pos[running] = pos + commit
            done = running[slot_pos[running] >= rt.gen_len[req]]
            finish[slot_req[done]] = clock
            slot_req[done] = -1
        slot_req[admit_slots] = admitted
        slot_pos[admit_slots] = 1
        done = admit_slots[rt.gen_len[admitted] <= 1]
        finish[slot_req[done]] = clock
        slot_req[done] = -1
    generated = float(rt.gen_len.sum())
    return ReplayResult(
        generated_tokens=generated,
        throughput=generated / clock,
        time_s=clock,
        target_s=target_s,
        draft_s=draft_s,
        overhead_s=overhead_s,
        mean_latency_s=float(finish.mean()),
        steps=float(steps),
        committed=float(committed_total),
        proposed=float(proposed),
        rejected=float(rejected),
    )
