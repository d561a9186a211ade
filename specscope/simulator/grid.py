"""A simulation sweep: traces x proposer sets x policies x batch sizes -> one result row each.

Each row compares the policy against plain decoding (fixed-0) on the same requests, the same
proposer set (hence the same generation lengths), the same batch size and the same mode:
speedup = SD throughput / plain throughput. Trajectories are computed once per (trace, proposer
set, policy) and priced at every batch size; plain decoding is priced once per batch size.

Randomness (n-gram misses) is seeded per configuration from `seed` and the configuration's names,
so a row does not depend on which other rows are in the sweep, and a seeded run repeats exactly.

Censored traces (a server's steps, `formats/trace.py`): a row gets `lower_bound` = True when its replay
read a censored acc_len where the true, larger value could have changed the step: a fixed k where the
value was below k + 1 (fixed k up to the recorded k reads censored values only at or above it: exact),
any other policy wherever it read one (its decision may depend on the value: the oracle, adaptive). For
fixed k and the oracle the true speedup is then at least the row's: a longer acceptance lets a step
commit more and lands the next at least as far (`formats/trace.py`: a skipped position's value is the
rest of the step's draft). Rows of uncensored traces carry no `lower_bound` (and the CSV no column).
"""

from __future__ import annotations

import math
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from specscope.costs.model import CostModel
from specscope.errors import SpecscopeError
from specscope.simulator.memory import batch_cap, fit_batch_sizes
from specscope.simulator.paper import paper_replay
from specscope.policy.base import Policy
from specscope.policy.fixed import FixedK
from specscope.policy.registry import check_policy_name, make_policy, plain_decoding, scope, supports
from specscope.simulator.replay_trace import NGRAM, ReplayTrace, ngram_caps
from specscope.simulator.resample import resample, serve_requests
from specscope.simulator.result import ReplayResult
from specscope.simulator.serve import serve_replay
from specscope.simulator.serve_loop import serve_loop
from specscope.simulator.trajectory import Trajectory, run_trajectory
from specscope.simulator.trees import draft_form
from specscope.formats.trace import Trace
from specscope.tree_spec import split_tree_key, tree_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PAPER = "paper"
SERVE = "serve"
MODES = (SERVE, PAPER)
MATCH_PROB_FILE = Path(__file__).resolve().parent.parent / "data" / "ngram_match_prob.toml"

FIXED = re.compile(r"fixed-\d+")
PLAIN_SPEEDUP = 1.0  # fixed-0: plain decoding is the speedups' denominator


@dataclass(frozen=True)
class Skipped:
    """A (proposer set, policy) pair the sweep leaves out, and why."""

    proposers: str
    policy: str
    reason: str


def published_match_probs() -> dict[str, float]:
    with open(MATCH_PROB_FILE, "rb") as fh:
        return {k: float(v) for k, v in tomllib.load(fh)["workloads"].items()}


def ngram_match_prob(trace: Trace, override: float | None) -> float:
    """--ngram-match-prob if given, else the published value for the trace's workload, else 1.0."""
    if override is not None:
        return override
    table = published_match_probs()
    names = [trace.workload] if trace.workload else []
    if trace.path is not None:
        names += re.split(r"[^a-z0-9]+", trace.path.stem.lower())
    for name in names:
        if name in table:
            return table[name]
    return 1.0


def parse_proposer_set(text: str) -> tuple[str, ...]:
    """'ngram,eagle' -> ('ngram', 'eagle'); a tree key in its canonical spelling ('eagle3@tree:6' -> 'eagle3@tree:3x2')."""
    names = tuple(p.strip() for p in text.split(","))
    if not names or any(not p for p in names):
        raise SpecscopeError(f"--proposers value '{text}' has an empty name; write e.g. eagle or ngram,eagle")
    names = tuple(_canonical(p) for p in names)
    if len(set(names)) != len(names):
        raise SpecscopeError(f"--proposers value '{text}' names a proposer twice")
    return names


def _canonical(name: str) -> str:
    base, tree = split_tree_key(name)
    return name if tree is None else tree_key(base, tree)


def plan(proposer_sets: Sequence[tuple[str, ...]], policies: Sequence[str]) -> tuple[list, list[Skipped]]:
    """The (proposer set, policy) pairs to run, and those that do not apply (fixed-K>0 over several)."""
    pairs, skipped = [], []
    for pset in proposer_sets:
        for name in policies:
            if supports(name, pset):
                pairs.append((pset, name))
            else:
                skipped.append(Skipped(",".join(pset), name, f"not for this proposer set: {scope(name)}"))
    return pairs, skipped


def validate(traces, proposer_sets, policies, batch_sizes, costs: CostModel, mode: str,
             override: float | None) -> None:
    """Every input problem, before any work: one clear error."""
    if mode not in MODES:
        raise SpecscopeError(f"Unknown mode '{mode}'. Available: {', '.join(MODES)}")
    if not traces:
        raise SpecscopeError("no trace files given")
    if not policies:
        raise SpecscopeError("no policies given; e.g. --policies fixed-1 fixed-3 oracle")
    for name in policies:
        check_policy_name(name)
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise SpecscopeError(f"batch sizes must be integers >= 1, got {list(batch_sizes)}")
    if override is not None and not (0.0 <= override <= 1.0 and math.isfinite(override)):
        raise SpecscopeError(f"--ngram-match-prob must be a probability in [0, 1], got {override}")
    pairs, _ = plan(proposer_sets, policies)
    if not pairs:
        raise SpecscopeError("no policy applies to the given proposer sets (fixed-K and adaptive need a single "
                             "proposer, adaptive-combine two or more)")
    for trace in traces:
        for pset in proposer_sets:
            trace.require_proposers(pset)
        batch_cap(trace, costs)  # the longest request must fit in the cost model's memory, if it has one
    for pset, name in pairs:
        if make_policy(name, pset, costs).speculates:
            for proposer in pset:
                draft_form(costs, proposer)


def replay(mode: str, rt: ReplayTrace, policy: Policy, traj: Trajectory | None, costs: CostModel,
           batch_size: int, match: np.ndarray, rng: np.random.Generator, miss_u: np.ndarray) -> ReplayResult:
    """One policy at one batch size in one mode (the trajectory is recomputed when the policy needs the batch)."""
    if mode == PAPER:
        if traj is None:
            traj = run_trajectory(rt, policy, match, batch_size=batch_size)
        return paper_replay(rt, traj, policy, costs, batch_size, match, rng)
    if policy.batch_aware:
        return serve_loop(rt, policy, costs, batch_size, match, miss_u)
    return serve_replay(rt, traj, policy, costs, batch_size, match, miss_u)


def _key(*parts) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def run_grid(
    traces: Sequence[Trace],
    proposer_sets: Sequence[tuple[str, ...]],
    policies: Sequence[str],
    batch_sizes: Sequence[int],
    costs: CostModel,
    mode: str = SERVE,
    seed: int = 42,
    ngram_match_override: float | None = None,
    on_progress: Callable[[], None] | None = None,
    num_requests: int | None = None,
) -> list[dict]:
    """Simulate every applicable configuration; one row (dict over COLUMNS) each.

    Serve mode simulates a batch size larger than the trace's request count with resampled requests
    (`specscope/simulator/resample.py`; `num_requests`: how many, None = the default, 0 = never resample)."""
    validate(traces, proposer_sets, policies, batch_sizes, costs, mode, ngram_match_override)
    pairs, _ = plan(proposer_sets, policies)
    rows = []
    for trace in traces:
        p_ngram = ngram_match_prob(trace, ngram_match_override)
        label = str(trace.path) if trace.path is not None else trace.name
        caps = None  # the n-gram's real matches, looked up once per trace (not when the random model is asked for)
        if ngram_match_override is None and any(NGRAM in s for s in proposer_sets):
            caps = ngram_caps(trace)
        for pset in proposer_sets:
            psets_pairs = [name for s, name in pairs if s == pset]
            if not psets_pairs:
                continue
            rt = ReplayTrace.from_trace(trace, pset, caps)
            exact = rt.draft_cap is not None  # n-gram matches from the trace's tokens: no random misses
            match = np.array([p_ngram if p == NGRAM and not exact else 1.0 for p in pset])
            base = [seed, *_key(trace.name, ",".join(pset))]
            miss_u = np.random.default_rng(base).random(len(rt.acc))
            plain = plain_decoding(pset)
            views = {None: _RequestSet(rt, miss_u, run_trajectory(rt, plain, match))}
            plain_results: dict[int, ReplayResult] = {}
            for name in psets_pairs:
                policy = make_policy(name, pset, costs)
                for b in fit_batch_sizes(trace, batch_sizes, costs).sizes:  # capped where memory runs out
                    n = serve_requests(b, rt.num_requests, num_requests) if mode == SERVE else None
                    if n not in views:  # the same draw for every proposer set and policy of this trace
                        sampled, origin = resample(rt, n, [seed, *_key(trace.name, "resample", n)])
                        views[n] = _RequestSet(sampled, miss_u[origin], run_trajectory(sampled, plain, match))
                    view = views[n]
                    traj = view.trajectory(name, policy, match)
                    if b not in plain_results:
                        rng = np.random.default_rng(base + _key("plain", b))
                        plain_results[b] = replay(mode, view.rt, plain, view.plain_traj, costs, b, match, rng,
                                                  view.miss_u)
                    rng = np.random.default_rng(base + _key(name, b))
                    sd = replay(mode, view.rt, policy, traj, costs, b, match, rng, view.miss_u)
                    rows.append(_row(label, trace, pset, name, b, mode, costs, sd, plain_results[b],
                                     p_ngram if NGRAM in pset and not exact else None, seed, view.rt.num_requests,
                                     rt.num_requests))
                    if view.rt.censored is not None:
                        rows[-1]["lower_bound"] = reads_censored(view.rt, policy, traj)
                    if on_progress is not None:
                        on_progress()
    add_gap_recovered(rows)
    return rows


@dataclass
class _RequestSet:
    """The requests one batch size is simulated with (the trace's own, or resampled), and what is computed once
    for them: the n-gram miss draws, plain decoding's trajectory, each batch-unaware policy's trajectory."""

    rt: ReplayTrace
    miss_u: np.ndarray
    plain_traj: Trajectory
    trajectories: dict = field(default_factory=dict)

    def trajectory(self, name: str, policy: Policy, match: np.ndarray) -> Trajectory | None:
        """The policy's trajectory over these requests (None for a batch-aware policy: replayed step by step)."""
        if policy.batch_aware:
            return None
        if name not in self.trajectories:
            self.trajectories[name] = run_trajectory(self.rt, policy, match)
        return self.trajectories[name]


def reads_censored(rt: ReplayTrace, policy: Policy, traj: Trajectory | None) -> bool:
    """Whether the policy's replay of a censored trace depended on a censored acc_len (module docstring); a
    batch-aware policy's steps depend on the batch, so any censored value in the trace counts."""
    if traj is None:
        return bool(rt.censored.any())
    rows = rt.rows(traj.request, traj.position)
    hit = rt.censored[rows, traj.proposer] & (traj.k > 0)
    if isinstance(policy, FixedK):  # k fixed in advance: only a value below k + 1 capped the step
        hit &= rt.acc[rows, traj.proposer] < traj.k + 1
    return bool(hit.any())


def add_gap_recovered(rows: list[dict]) -> None:
    """Set each row's `gap_recovered` = (policy - best fixed-k) / (oracle - best fixed-k), on speedups.

    Compared within the same trace, mode, cost model and batch size. Best fixed-k: the best fixed-K
    row of the run whose proposers are all in the row's proposer set (for a combined set: the better
    single proposer's best fixed-k), and always plain decoding (fixed-0, speedup 1 by definition,
    listed or not): where every k >= 1 loses, not speculating is the best fixed choice, and a policy
    that stops speculating there has recovered nothing the operator could not have had. Oracle: the
    oracle row of the same proposer set. None (an empty cell) when the oracle is missing or does not
    beat the best fixed-k (e.g. a drafter too slow to pay even when it proposes exactly what is
    accepted).
    """
    def cell(r):
        return r["trace"], r["mode"], r["cost_model"], r["batch_size"]

    oracle = {(cell(r), r["proposers"]): r["speedup"] for r in rows if r["policy"] == "oracle"}
    fixed: dict[tuple, list[tuple[set, float]]] = {}
    for r in rows:
        if FIXED.fullmatch(r["policy"]):
            fixed.setdefault(cell(r), []).append((set(r["proposers"].split(",")), r["speedup"]))
    for r in rows:
        members = set(r["proposers"].split(","))
        best = max([PLAIN_SPEEDUP, *(s for ps, s in fixed.get(cell(r), []) if ps <= members)])
        top = oracle.get((cell(r), r["proposers"]))
        gap = None if top is None else top - best
        r["gap_recovered"] = (r["speedup"] - best) / gap if gap is not None and gap > 1e-12 else None


def count_configs(proposer_sets, policies, batch_sizes, num_traces: int) -> int:
    pairs, _ = plan(proposer_sets, policies)
    return num_traces * len(pairs) * len(batch_sizes)


def _row(label, trace, pset, policy, b, mode, costs, sd: ReplayResult, ar: ReplayResult, p_ngram, seed,
         requests, distinct) -> dict:
    return {
        "trace": label,
        "workload": trace.workload or "",
        "proposers": ",".join(pset),
        "policy": policy,
        "batch_size": b,
        "mode": mode,
        "cost_model": costs.name,
        "speedup": sd.throughput / ar.throughput,
        "sd_throughput": sd.throughput,
        "ar_throughput": ar.throughput,
        "mean_acc_len": sd.mean_acc_len,
        "acceptance_rate": sd.acceptance_rate,
        "verify_share": sd.share(sd.target_s),
        "draft_share": sd.share(sd.draft_s),
        "overhead_share": sd.share(sd.overhead_s),
        "wasted_verify_share": sd.wasted_verify_share,
        "sd_time_s": sd.time_s,
        "ar_time_s": ar.time_s,
        "sd_mean_latency_s": sd.mean_latency_s,
        "ar_mean_latency_s": ar.mean_latency_s,
        "requests": requests,  # simulated (resampled where the trace holds fewer than the batch size)
        "generated_tokens": sd.generated_tokens,
        "ngram_match_prob": p_ngram,
        "seed": seed,
        "gap_recovered": None,  # filled by add_gap_recovered once the whole sweep is in
        "distinct_requests": distinct,  # the trace's requests the row rests on
    }
