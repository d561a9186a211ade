"""The adaptive policies: `adaptive` (choose k) and `adaptive-combine` (choose proposer and k), per sequence and step.

One class for the simulator's replays and the engine's `--k adaptive` (`specscope/engine/drafting.py`),
so the decision sequence exists once. Each step:

1. the estimator (`acceptance.py`) gives each sequence's outlook: expected tokens for k = 0 .. k_cap;
2. the decision (`decision.py`) picks (proposer, k) per sequence maximising the batch's expected
   tokens per second under the cost model (serve pricing: one batch; paper mode, `view.replicated`:
   each row is B identical copies forming their own batch);
3. the counterfactual guard (`guard.py`) may follow a fixed k (or plain decoding) that has done
   better on what verification revealed;
4. a proposer that reports its confidence per draft (a draft model, EAGLE) is asked for the longest
   chain on offer, stopped where the calibrated survival of its drafts no longer pays for their
   seconds at the batch's expected rate (`confidence.py`): after drafting (`stop_drafting`, both) and,
   in the engine, already between draft passes (`keep_drafting`), where a deeper pass costs its
   measured seconds; the guard charges the cut chain to every expert that would have drafted it. A
   sampled chain (temperature > 0) stops only between passes: after drafting, a draft's confidence is q
   at its own draw, and cutting on it would bias the sampled output (`stop_drafting`).

What a decision may read (`StepView`): the sequences (`request`) and their batch (`batch_size`,
`batch_kv`), how many drafts each proposer can offer each sequence now (`caps`: the n-gram's match,
known before deciding: the engine drafts it first; the simulator looks it up in the trace's tokens)
and the outcome of its own past steps through `observe`: c - 1 of k drafts accepted, the censored
observation a real engine gets. Never `view.acc_len` (the future). A finished request teaches
nothing: its last step ended with the text, not with a rejection.

Engine only (what the simulator has no measurement of): `observe_step` hands over each step's
measured times. A sequence decoding alone then prices its drafts with the verify times measured per
token count (small steps are not linear in tokens on CPU kernels), drafts one token when it has not
drafted for `REFRESH_STEPS` steps (a timing taken in a slow spell would otherwise keep it from
speculating for the rest of the run), and a chain goes one pass deeper only where that pass's
measured seconds pay. A step where the engine knows every proposer's offer and none offers anything
(`view.offers_known`; most of a chat workload's n-gram steps) skips the decision: its only answer is
"no drafts", and the estimator and the guard record it as they would.

In the simulator, the first decode step (position 1) proposes nothing: a trace records acc_len 1
there by convention (position 0 is the prefill's token), a fact of the format, not an observation.
"""

from __future__ import annotations

import numpy as np

from specscope.costs.model import CostModel
from specscope.policy.acceptance import AcceptanceEstimate, AdaptiveParams, Outlook
from specscope.policy.base import Decision, Policy, StepView
from specscope.policy.confidence import ConfidenceCalibration, ConfidenceParams, kept_drafts
from specscope.policy.decision import StepPrices, choose_batch, choose_replicated
from specscope.policy.guard import MODEL, PLAIN, CounterfactualGuard, GuardParams

MEASURED_MEMORY = 8  # a timed token count's mean follows about its last 8 steps
REFRESH_STEPS = 64  # a sequence decoding alone drafts one token when it has not drafted for this many steps


class Adaptive(Policy):
    """Goodput-maximising k (and proposer, with several) from each sequence's own acceptance history."""

    batch_aware = True
    reference_pricing = False  # a step proposing nothing runs no drafter (paper mode too)
    reads_confidence = True
    online = True

    def __init__(self, proposers: tuple[str, ...], costs: CostModel, name: str = "adaptive",
                 params: AdaptiveParams = AdaptiveParams(), guard: GuardParams = GuardParams(),
                 confidence: ConfidenceParams = ConfidenceParams(depths=1)):
        """`confidence`: one depth for trace replays (a trace records each position's first-draft confidence,
        which stands for draft j of a chain at the position it drafts: its outcomes do not depend on the depth,
        and calibrating depths apart would only split the evidence); the engine calibrates depths apart."""
        super().__init__(proposers)
        self.costs, self.name, self.params = costs, name, params
        for proposer in self.proposers:
            costs.draft(proposer)  # a clear error now if the cost model does not price this proposer
        self.estimate = AcceptanceEstimate(len(self.proposers), params)
        self.guard = CounterfactualGuard(len(self.proposers), guard)
        self.calibration = ConfidenceCalibration(len(self.proposers), confidence)
        self.reset(0)

    def reset(self, num_requests: int) -> None:
        self.estimate.reset(num_requests)
        self.guard.reset()
        self.calibration.reset()
        self._step = None  # (k, p, prices, floor, chained) of the step just decided, when it planned chains
        self.rate = 0.0  # the batch's expected tokens per second under the last chain plan
        # Measured by the engine (`observe_step`); empty in a replay:
        self.alone: dict[int, tuple[float, int]] = {}  # verify tokens -> (recent mean seconds, steps), one sequence
        self.depth_seconds: tuple[float, int] = (0.0, 0)  # draft seconds per chain depth (recent mean, steps)
        self.depth = 0  # the longest confidence-stopped chain drafted this step
        self.steps = 0  # engine steps observed
        self.last_draft = 0  # the step a sequence decoding alone last verified a draft

    def clear(self, rows) -> None:
        """New sequences take these rows (engine slots): forget their own history; pooled counts stay."""
        self.estimate.clear(rows)

    # ------------------------------------------------------------------------------------------ deciding

    def _k_cap(self, view: StepView) -> int:
        if view.k_cap is not None:
            return min(self.params.k_cap, view.k_cap)
        k_max = getattr(getattr(view.trace, "source", None), "k_max", None)
        return min(self.params.k_cap, k_max) if k_max else self.params.k_cap

    def decide(self, view: StepView) -> Decision:
        self._step = None
        k_cap = self._k_cap(view)
        caps = view.caps
        if caps is None and getattr(view.trace, "draft_cap", None) is not None:  # the n-gram's match in the trace
            caps = view.trace.draft_cap[view.trace.rows(view.request, view.position)]
        replicated = view.batch_size is None or view.replicated
        copies = 1 if view.batch_size is None else view.batch_size
        kv = 0.0 if view.batch_size is None else view.batch_kv
        if view.offers_known and not caps.any():  # nothing on offer: every choice is "no drafts"
            none = np.zeros(len(view.request), dtype=np.int64)
            self.guard.nothing_offered(view.request, StepPrices(self.costs, self.proposers, float(kv[0]), 1, False)
                                       .seconds(none, none))
            return Decision(none, none.copy())
        outlook = self.estimate.outlook(view.request, k_cap)
        marginal = None if replicated or view.batch_size != 1 else self._measured_marginal(outlook.k_cap, float(kv[0]))
        if replicated:
            k, p = choose_replicated(outlook, self.costs, self.proposers, kv, copies, caps)
        else:
            k, p = choose_batch(outlook, self.costs, self.proposers, float(kv[0]), caps, marginal)
        ks, ps = self.guard.experts(k, p, caps, outlook.k_cap, outlook.state)
        if view.trace is not None:  # a trace's position 1 is the prefill's token (module docstring)
            ks = np.where(view.position[None, :] <= 1, 0, ks)
        prices = StepPrices(self.costs, self.proposers, kv if replicated else float(kv[0]), copies, replicated,
                            marginal)
        k, p = self.guard.choose(view.request, outlook, ks, ps, prices.choices(ks, ps))
        if view.batch_size == 1 and not replicated and caps is not None:
            self._refresh(k, p, caps[0], outlook, prices)
        confident = view.confident if view.confident is not None else getattr(view.trace, "confident", None)
        if confident is not None:
            k = self._plan_chains(outlook, prices, k, p, caps, k_cap, confident, replicated)
        return Decision(k, p)

    def _plan_chains(self, outlook: Outlook, prices: StepPrices, k, p, caps, k_cap: int, confident,
                     replicated: bool) -> np.ndarray:
        """Rows drafting with a confidence-reporting proposer ask for the longest chain on offer; the floor [n, K]
        (column j - 1: the expected tokens draft j must promise, its seconds at the expected rate) is kept for
        the stop. Returns k with those chains."""
        rows = np.arange(len(k))
        tokens, spent = outlook.expected()[rows, p, k], prices.seconds(k, p)
        rate = tokens / spent if replicated else np.full(len(k), tokens.sum() / spent.sum())  # per copy / batch
        top = np.full(len(k), k_cap) if caps is None else np.minimum(k_cap, caps[rows, p])
        chained = (k > 0) & confident[p]
        k = np.where(chained, np.maximum(k, top), k)
        floor = rate[:, None] * prices.per_draft(p, max(int(k.max(initial=0)), 1))  # draft j's seconds, in tokens
        self._step = (k, p, prices, floor, chained)
        self.rate = float(rate[0]) if len(rate) else 0.0
        return k

    def _refresh(self, k: np.ndarray, q: np.ndarray, caps: np.ndarray, outlook: Outlook, prices: StepPrices) -> None:
        """A sequence decoding alone that has not drafted for REFRESH_STEPS (engine) steps drafts one token now (in
        place; the guard charges it to the expert it follows), with the offered proposer expected to keep most."""
        if k[0] > 0 or self.steps - self.last_draft < REFRESH_STEPS or not (caps > 0).any():
            return
        expected = np.where(caps > 0, outlook.expected()[0, :, min(1, outlook.k_cap)], -np.inf)
        k[0], q[0] = 1, int(np.argmax(expected))
        self.guard.ran(k[:1].copy(), prices.seconds(k[:1], q[:1]), q[:1].copy())
        self.last_draft = self.steps

    def _measured_marginal(self, k_cap: int, kv: float) -> np.ndarray | None:
        """[k_cap + 1] target seconds k drafts add to a one-sequence step: measured where the engine has timed that
        many tokens (at least twice), elsewhere the cost model scaled by its mean error on the timed ones. On CPU
        kernels the step time is not linear in tokens (flat up to a tile, steep past it), which a line fitted
        over all batch sizes misses; None until something was timed (always, in a replay)."""
        timed = {n: mean for n, (mean, steps) in self.alone.items() if steps >= 2 and n <= k_cap + 1}
        if not timed:
            return None
        model = self.costs.target(np.arange(1, k_cap + 2, dtype=np.float64), kv, 1)  # [k_cap + 1], 1.. tokens
        at = model.tolist()
        scale = float(np.mean([timed[n] / at[n - 1] for n in timed]))
        step = scale * model
        for n, seconds in timed.items():
            step[n - 1] = seconds
        return step - step[0]

    # ----------------------------------------------------------------------------------- stopping chains

    def keep_drafting(self, proposer: int, rows: np.ndarray):
        """The engine's in-step stop for proposer index `proposer` drafting for these rows of the decision: a
        `ProposerInput.keep_drafting` callback, or None when the step planned no chains. A chain drafts one
        forward per depth whatever the batch, so going one deeper costs its measured seconds per depth once,
        shared by the rows that go on: rows whose next draft is expected to beat its floor go on together if
        their summed gain pays for that forward. The next draft's confidence is not known before it is drafted:
        it is expected to survive at its depth's calibrated rate times the survival so far."""
        if self._step is None:
            return None
        floor = self._step[3][rows]
        depth, measured = self.depth_seconds
        depth_tokens = self.rate * depth if measured >= 2 else 0.0
        rates = self.calibration.depth_rates(proposer)

        def keep(index: np.ndarray, confidence: np.ndarray) -> np.ndarray:
            j = confidence.shape[1]  # drafts so far; the next one is draft j + 1 (floor column j)
            if j >= floor.shape[1]:
                return np.zeros(len(index), dtype=bool)
            survival = self.calibration.survival(np.full(len(index), proposer), confidence)[:, -1]
            gain = survival * rates[min(j, len(rates) - 1)] - floor[index, j]
            going = gain > 0
            return going if gain[going].sum() >= depth_tokens else np.zeros(len(index), dtype=bool)
        return keep

    def stop_drafting(self, view: StepView, index: np.ndarray, confidence: np.ndarray, ran: np.ndarray | None = None,
                      drafted: np.ndarray | None = None, sampled: np.ndarray | None = None) -> np.ndarray:
        """Drafts kept [m] of the chains of rows `index`, given their drafts' confidences [m, K] (NaN past each
        row's drafts); the guard is charged the cut chains. The engine gives what each row ran (`ran` [n]), each
        chain drafted (`drafted` [m]) and which chains were sampled (`sampled` [m]): those keep every draft, as
        their in-step stop (`keep_drafting`) already decided each one before it was drawn, on the same floor and
        the survival known then (a sampled draft's own confidence is q at its draw: cutting on it would keep the
        draft only where q favours it, and rejection sampling would no longer reproduce the target). A replay's
        chains ran the decision's k."""
        k, p, prices, floor, chained = self._step
        survival = self.calibration.survival(p[index], confidence)
        if drafted is None:
            kept = kept_drafts(survival, k[index], floor[index, : confidence.shape[1]])
            done, chained = k.copy(), np.zeros(len(k), dtype=bool)
            chained[index] = True
        else:
            width = min(survival.shape[1], floor.shape[1])
            kept = kept_drafts(survival[:, :width], drafted, floor[index, :width])
            if sampled is not None:
                kept = np.where(sampled, drafted, kept)
            done = np.asarray(ran).copy()
        done[index] = kept
        self.guard.chains_ran(done, chained, prices)
        return kept

    # --------------------------------------------------------------------------------------- observing

    def observe(self, view: StepView, decision: Decision, committed: np.ndarray,
                confidence: np.ndarray | None = None) -> None:
        """What verification revealed: `committed` [n] tokens per row (accepted + 1) for the drafts that ran
        (`decision`); `confidence` [n, K] the confidences of those drafts (NaN-padded), where the caller has them
        (the engine) — a replay looks them up in its trace."""
        committed = np.asarray(committed)
        if view.going is not None:
            going = view.going
        else:  # a finished request teaches nothing: its last step ended with the text, not with a rejection
            going = view.position + committed < view.trace.gen_len[view.request]
        rows, q, k, accepted = (x[going] for x in (view.request, decision.proposer, decision.k, committed - 1))
        self.estimate.observe(rows, q, k, accepted)
        self.guard.observe(rows, q, k, accepted)
        confident = view.confident if view.confident is not None else getattr(view.trace, "confident", None)
        if confident is None:
            return
        use = np.flatnonzero(going & (decision.k > 0) & confident[decision.proposer])
        if not use.size:
            return
        q_use, k_use = decision.proposer[use], decision.k[use]
        if confidence is None:
            trace = view.trace
            confidence = trace.drafted_confidence(trace.rows(view.request[use], view.position[use]), k_use, q_use)
        else:
            confidence = confidence[use]
        self.calibration.observe(q_use, confidence, k_use, committed[use] - 1)

    def chain_depth(self, depth: int) -> None:
        self.depth = max(self.depth, depth)

    def observe_step(self, record) -> None:
        """The engine's `timing.StepRecord` of the step just run: keep the verify time of one-sequence decode steps
        per token count and the draft time per chain depth of steps that ran a confidence-stopped chain (recent
        means); count steps, and when a sequence decoding alone last drafted."""
        self.steps += 1
        if record.num_seqs == 1 and record.proposed:
            self.last_draft = self.steps
        if self.depth > 0:
            mean, steps = self.depth_seconds
            steps += 1
            mean += (record.draft / self.depth - mean) / min(steps, MEASURED_MEMORY)
            self.depth_seconds, self.depth = (mean, steps), 0
        if record.num_seqs != 1 or record.num_prefill:
            return
        mean, steps = self.alone.get(record.num_batched_tokens, (0.0, 0))
        steps += 1
        mean += (record.verify - mean) / min(steps, MEASURED_MEMORY)
        self.alone[record.num_batched_tokens] = (mean, steps)

    def guard_shares(self) -> tuple[float | None, float | None]:
        """How often the guard followed the model's decision, and plain decoding (None before any step)."""
        followed = sum(self.guard.followed.values())
        if not followed:
            return None, None
        plain = round(self.guard.followed[PLAIN] / followed, 4) * self.guard.params.plain  # without it, PLAIN is a k
        return round(self.guard.followed[MODEL] / followed, 4), plain
