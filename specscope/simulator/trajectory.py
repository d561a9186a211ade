"""Each request's decode steps under a policy: where it stands, what it proposes, what it commits.

All requests step in lockstep, vectorised across requests: at each round every unfinished request
asks the policy for (k, proposer), commits min(acc_len[pos - 1], k + 1) tokens and moves on, until
pos >= G. The result is a flat, request-major table of steps that the cost replays (paper, serve)
price at any batch size.

This is exact for both replay modes whenever the policy's choices depend only on the request's own
state (everything but `batch_size`/`batch_kv`): a request then takes the same steps whatever it is
batched with. Batch-aware policies get the batch's size and KV here in paper mode (where every copy
of a request is in the same state, so the batch KV is known), and go through `serve_loop` in serve
mode.

Memoryless policies (`memoryless = True`: the choice depends only on the request, the position and
the acc_len there — fixed-K and oracle) are asked once for every position of every request; each
request's path through its positions then follows by pointer chasing (pos -> pos + committed), which
is much cheaper per round than asking the policy. Both paths give the same trajectory.

"may miss": a proposer with a match probability p < 1 (n-gram) asked for drafts at a position where
its acc_len is 1 found no match at all with probability 1 - p; it then proposes nothing (input
length 1) — a cost effect only, the step still commits 1 token. The replays draw it. Where the trace
tells how many drafts the n-gram could offer (`ReplayTrace.draft_cap`), a step's k is capped to it
instead (recorded in `Trajectory.k`), and no miss is drawn (p = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specscope.errors import SpecscopeError
from specscope.policy.base import Policy, Decision, StepView
from specscope.simulator.replay_trace import ReplayTrace


@dataclass(frozen=True)
class Trajectory:
    """Decode steps of every request, request-major (steps of request 0, then of request 1, ...)."""

    request: np.ndarray  # [S] request index
    position: np.ndarray  # [S] output tokens committed before the step
    k: np.ndarray  # [S] drafts proposed (before any n-gram miss)
    proposer: np.ndarray  # [S] index into the proposer set
    committed: np.ndarray  # [S] tokens committed = min(acc_len, k + 1), the step's acceptance length
    may_miss: np.ndarray  # [S] bool, drafting from a proposer with p < 1 where its acc_len is 1
    switched: np.ndarray  # [S] bool, drafting with another proposer than the request's last drafting step
    steps: np.ndarray  # [R] decode steps per request
    start: np.ndarray  # [R] index of each request's first step

    @property
    def finishes(self) -> np.ndarray:
        """[S] bool: the step is its request's last."""
        last = np.zeros(len(self.request), dtype=bool)
        has = self.steps > 0
        last[(self.start + self.steps - 1)[has]] = True
        return last


def run_trajectory(
    rt: ReplayTrace,
    policy: Policy,
    match_prob: np.ndarray,
    batch_size: int | None = None,
) -> Trajectory:
    """Step every request to completion under `policy`.

    match_prob: [P] probability that each proposer finds a match where its acc_len is 1 (1.0: always).
    batch_size: give it (paper mode) for batch-aware policies; their views then carry the batch KV,
    B * (prompt_len + position), since all B copies of a request move together.
    """
    aware = policy.batch_aware and batch_size is not None
    if policy.memoryless and not aware:
        return _memoryless_trajectory(rt, policy, match_prob)
    num = rt.num_requests
    policy.reset(num)
    active = np.flatnonzero(rt.gen_len > 1)
    pos = np.ones(len(active), dtype=np.int64)
    row = rt.offset[active]  # row of acc a step at `pos` reads: offset + pos - 1
    gen_len = rt.gen_len[active]
    can_miss = match_prob < 1.0
    track_switch = len(rt.proposers) > 1
    last_proposer = np.full(num, -1, dtype=np.int64)
    chunks = []
    while active.size:
        n = len(active)
        acc_now = rt.acc[row]
        view = StepView(
            request=active,
            position=pos,
            acc_len=acc_now,
            batch_size=batch_size if aware else None,
            batch_kv=batch_size * (rt.prompt_len[active] + pos) if aware else None,
            trace=rt,
            replicated=aware,
        )
        decision = policy.decide(view)
        k, q = check_decision(decision, n, len(rt.proposers), policy)
        k = stop_drafting(rt, policy, view, row, rt.capped(row, k, q), q)
        chosen = acc_now[np.arange(n), q] if track_switch else acc_now[:, 0]
        committed = np.minimum(chosen, k + 1)
        if can_miss.any():
            may_miss = (k > 0) & (chosen == 1) & can_miss[q]
        else:
            may_miss = np.zeros(n, dtype=bool)
        if track_switch:
            drafting = k > 0
            prev = last_proposer[active]
            switched = drafting & (prev >= 0) & (prev != q)
            last_proposer[active[drafting]] = q[drafting]
        else:
            switched = np.zeros(n, dtype=bool)
        chunks.append((active, pos, k, q, committed, may_miss, switched))
        policy.observe(view, Decision(k, q), committed)
        pos = pos + committed
        row = row + committed
        keep = pos < gen_len
        if not keep.all():
            active, pos, row, gen_len = active[keep], pos[keep], row[keep], gen_len[keep]
    return _assemble(chunks, num)


def _memoryless_trajectory(rt: ReplayTrace, policy: Policy, match_prob: np.ndarray) -> Trajectory:
    """Ask the policy about every position at once, then follow each request's path through them."""
    num = rt.num_requests
    policy.reset(num)
    rows = np.arange(len(rt.acc))
    request_of = np.repeat(np.arange(num), rt.gen_len)
    position_of = rows - rt.offset[request_of] + 1  # a step at this position reads this row
    decision = policy.decide(StepView(request_of, position_of, rt.acc, trace=rt))
    k_of, q_of = check_decision(decision, len(rows), len(rt.proposers), policy)
    k_of = rt.capped(rows, k_of, q_of)
    chosen_of = rt.acc[rows, q_of]
    commit_of = np.minimum(chosen_of, k_of + 1)

    active = np.flatnonzero(rt.gen_len > 1)
    row = rt.offset[active]
    last_row = (rt.offset + rt.gen_len - 1)[active]  # reaching it means pos >= G: done
    visited = []
    while row.size:
        visited.append(row)
        row = row + commit_of[row]
        keep = row < last_row
        if not keep.all():
            row, last_row = row[keep], last_row[keep]
    path = np.sort(np.concatenate(visited)) if visited else np.zeros(0, dtype=np.int64)  # request-major
    request, k, q, chosen = request_of[path], k_of[path], q_of[path], chosen_of[path]
    drafting = k > 0
    may_miss = drafting & (chosen == 1) & (match_prob[q] < 1.0)
    switched = np.zeros(len(path), dtype=bool)
    d = np.flatnonzero(drafting)  # a switch: same request, previous drafting step used another proposer
    switched[d[1:]] = (request[d[1:]] == request[d[:-1]]) & (q[d[1:]] != q[d[:-1]])
    steps = np.bincount(request, minlength=num).astype(np.int64)
    start = (np.cumsum(steps) - steps).astype(np.int64)
    return Trajectory(request, position_of[path], k, q, commit_of[path], may_miss, switched, steps, start)


def check_decision(decision, n: int, num_proposers: int, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(decision.k, dtype=np.int64)
    q = np.asarray(decision.proposer, dtype=np.int64)
    if k.shape != (n,) or q.shape != (n,):
        raise SpecscopeError(f"policy '{policy.name}' returned {k.shape}/{q.shape} proposals for {n} sequences")
    if n and (k.min() < 0 or q.min() < 0 or q.max() >= num_proposers):
        raise SpecscopeError(f"policy '{policy.name}' proposed a negative k or an unknown proposer index")
    return k, q


def stop_drafting(rt: ReplayTrace, policy: Policy, view: StepView, rows: np.ndarray, k: np.ndarray,
                  q: np.ndarray) -> np.ndarray:
    """k after the policy's in-step stop on draft confidence, where it reads them and the trace records them."""
    if not getattr(policy, "reads_confidence", False) or rt.confident is None:
        return k
    use = np.flatnonzero((k > 0) & rt.confident[q])
    if not use.size:
        return k
    kept = policy.stop_drafting(view, use, rt.drafted_confidence(rows[use], k[use], q[use]))
    out = k.copy()
    out[use] = np.clip(np.asarray(kept, dtype=np.int64), 0, k[use])
    return out


def _assemble(chunks, num_requests: int) -> Trajectory:
    if chunks:
        cols = [np.concatenate(c) for c in zip(*chunks)]
    else:
        cols = [np.zeros(0, dtype=np.int64)] * 5 + [np.zeros(0, dtype=bool)] * 2
    order = np.argsort(cols[0], kind="stable")  # rounds are in time order, so each request's steps stay ordered
    request, position, k, proposer, committed, may_miss, switched = (c[order] for c in cols)
    steps = np.bincount(request, minlength=num_requests).astype(np.int64)
    start = (np.cumsum(steps) - steps).astype(np.int64)
    return Trajectory(request, position, k, proposer, committed, may_miss, switched, steps, start)
