"""`--k adaptive`: a proposer that picks k (and, over several proposers, which one) per sequence and step.

`AdaptiveProposer` wraps one or more proposers and asks `specscope.adaptive` — the same estimator
and decision the simulator's `adaptive` / `adaptive-combine` policies use — what each decoding
sequence should propose, under a cost model of this machine (`--cost-model`, fitted by
`specscope profile` + `specscope fit-cost`). The engine runs it like any proposer: it caps k at the
engine's `max_draft` (`run.ADAPTIVE_K_CAP`), and it learns what was accepted the way every proposer does,
from the context: at the next step, the committed tokens after the drafted position show how many
drafts were kept (their longest common prefix with the drafts; the bonus token differs from the
first rejected draft). A proposer that returns fewer drafts than asked is charged for what it
returned. A proposer whose drafts are free prefixes (`drafts_are_free_prefixes`: the n-gram) drafts
first, at the cap, so the decision knows how many drafts each sequence can get — none without a
match, which the issue's "cheap proposer signals" allow — and each chosen sequence keeps its first k.
A step where such proposers are all there is and none offers anything skips the decision (its only
answer is "no drafts"; the estimator and the guard record it as they would: the same state after);
most of a chat workload's steps are such (at B 1 on this CPU a decision takes ~0.4 ms of a ~9 ms step).
A sequence decoding alone prices its drafts with the verify times this run measured per token count
(`observe_step`) where it has them: small steps are not linear in tokens on CPU kernels. The
decision goes through the counterfactual guard (`specscope/policy/guard.py`), as in the simulator.
Not drafting teaches nothing (neither what a draft would cost nor whether it would be kept), and the
machine's speed drifts: a sequence decoding alone that has not drafted for `REFRESH_STEPS` steps
drafts one token (with the proposer that promises most), so a timing taken in a slow spell does not
keep it from speculating for the rest of the run.

A proposer that drafts a chain and reports its confidence per draft (`reports_confidence`: the draft
model, EAGLE) is asked for the longest chain on offer and stops it mid-step where the calibrated
survival of its drafts no longer pays (`specscope/policy/confidence.py`, as the simulator's
policies do); the calibration learns from the same verified outcomes, and the guard charges each cut
chain to every expert that would have drafted it (`CounterfactualGuard.chains_ran`).
"""

from __future__ import annotations

import numpy as np
import torch

from specscope.policy.acceptance import AcceptanceEstimate, AdaptiveParams
from specscope.policy.decision import StepPrices, choose_batch
from specscope.policy.confidence import ConfidenceCalibration, kept_drafts
from specscope.policy.guard import MODEL, PLAIN, CounterfactualGuard, GuardParams
from specscope.costs.model import CostModel
from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.errors import SpecscopeError

MEASURED_MEMORY = 8  # a timed token count's mean follows about its last 8 steps
REFRESH_STEPS = 64  # a sequence decoding alone drafts one token when it has not drafted for this many steps


def accepted_prefix(drafts: np.ndarray, context: np.ndarray, base: int) -> int:
    """How many of `drafts` (proposed after `base` tokens of context) the context now holds."""
    tail = context[base : base + len(drafts)]
    differ = np.flatnonzero(tail != drafts[: len(tail)])
    return int(differ[0]) if differ.size else len(tail)


class AdaptiveProposer(Proposer):
    """Chooses (proposer, k) per sequence and step with `specscope.policy.decision.choose_batch`."""

    name = "adaptive"

    def __init__(self, proposers: dict[str, Proposer], costs: CostModel, params: AdaptiveParams = AdaptiveParams(),
                 guard: GuardParams = GuardParams()):
        super().__init__(next(iter(proposers.values())).settings)
        self.subs, self.costs, self.params = dict(proposers), costs, params
        self.names = tuple(self.subs)
        for name in self.names:
            costs.draft(name)  # a clear error now if the cost model does not price this proposer
        if len(self._feature_kinds()) > 1:
            raise SpecscopeError(f"--method {','.join(self.names)}: eagle3 reads other target features than "
                                 "eagle/mtp; combine eagle3 only with ngram or draft")
        self.estimate = AcceptanceEstimate(len(self.names), params)
        self.guard = CounterfactualGuard(len(self.names), guard)
        self.calibration = ConfidenceCalibration(len(self.names))
        self.confident = np.array([bool(self.subs[n].reports_confidence) for n in self.names])
        self.depth = 0  # the longest chain a confidence-stopped proposer drafted this step
        self.depth_seconds: tuple[float, int] = (0.0, 0)  # measured draft seconds per chain depth (recent mean, steps)
        self.rate = 0.0  # the batch's expected tokens per second under this step's decision
        # slot -> (proposer, drafts, context length, the drafts' confidences or None)
        self.pending: dict[int, tuple[int, np.ndarray, int, np.ndarray | None]] = {}
        self.alone: dict[int, tuple[float, int]] = {}  # verify tokens -> (recent mean seconds, steps), one sequence
        self.steps = 0  # engine steps observed
        self.last_draft = 0  # the step a sequence decoding alone last verified a draft
        self.chosen = np.zeros((len(self.names) + 1, 2), dtype=np.int64)  # [proposer or none, (sequence-steps, drafts)]

    @property
    def label(self) -> str:
        return "adaptive(" + "+".join(p.label for p in self.subs.values()) + ")"

    @property
    def needs_hidden(self) -> bool:  # type: ignore[override]
        return any(p.needs_hidden for p in self.subs.values())

    def _feature_kinds(self) -> set[tuple]:
        """The target layers each feature head reads (() = the last hidden state), as a set."""
        return {tuple(getattr(p, "hidden_layers", ())) for p in self.subs.values() if p.needs_hidden}

    @property
    def hidden_layers(self) -> tuple:
        """The target features the feature heads read (the engine computes one kind per step)."""
        kinds = self._feature_kinds()
        return kinds.pop() if kinds else ()

    def bind(self, num_slots: int, max_len: int) -> None:
        for p in self.subs.values():
            p.bind(num_slots, max_len)
        self.estimate.reset(num_slots)
        self.guard.reset()
        self.calibration.reset()
        self.pending = {}
        self.alone = {}
        self.steps = self.last_draft = 0
        self.chosen[:] = 0

    def reset(self, slot: int) -> None:
        for p in self.subs.values():
            p.reset(slot)
        self.estimate.clear([slot])
        self.pending.pop(slot, None)

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.subs.values())

    def _learn(self, batch: ProposerInput) -> None:
        """Record the outcome of each sequence's previous step (what its context now shows)."""
        rows, props, ks, accepted, sure = [], [], [], [], []
        for slot, ctx in zip(batch.slots, batch.contexts):
            if slot not in self.pending:
                continue
            q, drafts, base, conf = self.pending.pop(slot)
            rows.append(slot)
            props.append(q)
            ks.append(len(drafts))
            accepted.append(accepted_prefix(drafts, ctx, base) if len(drafts) else 0)
            if conf is not None and len(drafts):
                sure.append((q, conf, len(drafts), accepted[-1]))
        if rows:
            self.estimate.observe(np.array(rows), np.array(props), np.array(ks), np.array(accepted))
            self.guard.observe(np.array(rows), np.array(props), np.array(ks), np.array(accepted))
        if sure:
            width = max(len(c) for _, c, _, _ in sure)
            conf = np.full((len(sure), width), np.nan)
            for i, (_, c, _, _) in enumerate(sure):
                conf[i, : len(c)] = c
            q, k, a = (np.array([x[i] for x in sure]) for i in (0, 2, 3))
            self.calibration.observe(q, conf, k, a)

    def propose(self, batch: ProposerInput) -> Proposal:
        self._learn(batch)
        B = len(batch.slots)
        cap = np.asarray(batch.max_draft, dtype=np.int64)
        k, q = np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
        decoding = np.flatnonzero(cap > 0)
        offered: dict[int, Proposal] = {}  # proposer index -> its drafts at the cap for the decoding rows
        floor = prices = chained = None  # [B, K] what each confidence-stopped chain's drafts must promise, [n] its rows
        if decoding.size:
            slots = np.asarray(batch.slots)[decoding]
            kv = float(sum(len(c) for c in batch.contexts))
            k_cap = min(self.params.k_cap, int(cap.max()))
            caps = np.repeat(np.minimum(cap[decoding], k_cap)[:, None], len(self.names), axis=1)
            for index, name in enumerate(self.names):
                if self.subs[name].drafts_are_free_prefixes:  # draft first: k is then chosen knowing what exists
                    offered[index] = self._call(name, batch, decoding, caps[:, index])
                    caps[:, index] = offered[index].num_draft.cpu().numpy()
            if self._nothing_on_offer(offered, caps):
                none = np.zeros(len(decoding), dtype=np.int64)
                self.guard.nothing_offered(slots, StepPrices(self.costs, self.names, kv, 1, False).seconds(none, none))
                return self._finish(batch, decoding, offered, k, q, floor)[0]
            outlook = self.estimate.outlook(slots, k_cap)
            marginal = self._measured_marginal(k_cap, kv) if B == 1 else None
            model_k, model_q = choose_batch(outlook, self.costs, self.names, kv, caps, marginal)  # k <= caps
            ks, qs = self.guard.experts(model_k, model_q, caps, outlook.k_cap, outlook.state)
            prices = StepPrices(self.costs, self.names, kv, 1, False, marginal)
            k[decoding], q[decoding] = self.guard.choose(slots, outlook, ks, qs, prices.choices(ks, qs))
            if B == 1:
                self._refresh(k, q, caps[0], outlook, prices)
            floor, chained = self._plan_chains(outlook, prices, decoding, caps, k, q, offered)
        proposal, ran = self._finish(batch, decoding, offered, k, q, floor)
        if floor is not None:
            self.guard.chains_ran(ran, chained, prices)
        return proposal

    def _nothing_on_offer(self, offered: dict[int, Proposal], caps: np.ndarray) -> bool:
        """Every proposer drafted first and none offers a row anything (the n-gram found no match): every choice,
        the model's and the guard's experts', is then "no drafts", so the step skips the decision (the guard
        scores it as it would have, `CounterfactualGuard.nothing_offered`)."""
        return len(offered) == len(self.names) and not caps.any()

    def _finish(self, batch: ProposerInput, decoding, offered: dict[int, Proposal], k, q,
                floor) -> tuple[Proposal, np.ndarray]:
        """Run the decided drafts (k [B], proposer q [B]; chains stop where drafts fall below floor [B, K]), remember
        them for the next step's outcome and count the choices: (the step's proposal, drafts run per decoding row)."""
        B = len(batch.slots)
        drafts = [np.zeros(0, dtype=np.int64)] * B
        sure: list[np.ndarray | None] = [None] * B
        probs: dict[int, torch.Tensor] = {}
        for index, name in enumerate(self.names):
            chosen = (k > 0) & (q == index)
            stop = None
            if index in offered:  # drafted already, at the cap: keep each chosen row's first k
                rows, sub = decoding, offered[index]
            else:
                # A feature head (EAGLE) sees every sequence every step, drafting or not: it keeps its cache in
                # step with the target's features, which the engine hands over for the last step only.
                rows = np.arange(B) if self.subs[name].needs_hidden else np.flatnonzero(chosen)
                if not rows.size:
                    continue
                if self.confident[index] and floor is not None:
                    stop = self._stopper(index, floor[rows])
                sub = self._call(name, batch, rows, [int(k[r]) if chosen[r] else 0 for r in rows], stop)
            ids, num = sub.draft_ids.cpu().numpy(), sub.num_draft.cpu().numpy()
            conf = sub.extra.get("confidence")  # reported where asked: the chains `stop` ran
            survival = None
            if conf is not None:
                conf = conf.float().cpu().numpy()
                survival = self.calibration.survival(np.full(len(rows), index), conf)
                self.depth = max(self.depth, int(num.max(initial=0)))
            kept = np.minimum(num, k[rows])
            if survival is not None:  # the draft that failed the test is dropped
                width = min(survival.shape[1], floor.shape[1])
                kept = kept_drafts(survival[:, :width], kept, floor[rows, :width])
            for j, r in enumerate(rows):
                if not chosen[r]:
                    continue
                n = int(kept[j])
                drafts[r] = ids[j, :n].copy()
                if conf is not None:
                    sure[r] = conf[j, :n].copy()
                if sub.draft_probs is not None:
                    probs[int(r)] = sub.draft_probs[j, :n]
        ran = np.fromiter((len(drafts[r]) for r in decoding), dtype=np.int64, count=len(decoding))  # drafts per row
        for r in decoding:
            self.pending[batch.slots[r]] = (int(q[r]), drafts[r], len(batch.contexts[r]), sure[r])
        if decoding.size:
            chose = np.where(ran > 0, q[decoding], len(self.names))  # the last row: drafted nothing
            np.add.at(self.chosen, (chose, 0), 1)
            np.add.at(self.chosen, (chose, 1), ran)
        proposal = Proposal.from_lists(drafts)
        if probs:
            proposal.draft_probs = _stack_probs(proposal, probs)
        return proposal, ran

    def choices(self) -> dict:
        """What the run decided, for its summary: per proposer the share of decoding sequence-steps that drafted
        with it and its mean drafts per such step, the share that drafted nothing, and how often the guard
        followed the model's decision and plain decoding rather than a fixed rule."""
        steps = int(self.chosen[:, 0].sum())

        def share(n):
            return round(float(n) / steps, 4) if steps else None

        def mean_k(i):
            return round(float(self.chosen[i, 1] / self.chosen[i, 0]), 3) if self.chosen[i, 0] else None

        followed = sum(self.guard.followed.values())
        return {
            "sequence_steps": steps,
            "no_draft_share": share(self.chosen[-1, 0]),
            "proposers": {name: {"share": share(self.chosen[i, 0]), "mean_k": mean_k(i)} for i, name in enumerate(self.names)},
            "guard_followed_model_share": round(self.guard.followed[MODEL] / followed, 4) if followed else None,
            "guard_followed_plain_share": (round(self.guard.followed[PLAIN] / followed, 4) * self.guard.params.plain
                                           if followed else None),  # without the expert, index PLAIN is a fixed k
        }

    def _refresh(self, k: np.ndarray, q: np.ndarray, caps: np.ndarray, outlook, prices: StepPrices) -> None:
        """A sequence decoding alone that has not drafted for REFRESH_STEPS steps drafts one token now (in place;
        the guard charges it to the expert it follows), with the offered proposer expected to keep most."""
        if k[0] > 0 or self.steps - self.last_draft < REFRESH_STEPS or not (caps > 0).any():
            return
        expected = np.where(caps > 0, outlook.expected()[0, :, min(1, outlook.k_cap)], -np.inf)
        k[0], q[0] = 1, int(np.argmax(expected))
        self.guard.ran(k[:1].copy(), prices.seconds(k[:1], q[:1]), q[:1].copy())
        self.last_draft = self.steps

    def _plan_chains(self, outlook, prices: StepPrices, decoding, caps, k, q, offered):
        """Rows drafting with a confidence-reporting proposer ask for the longest chain on offer (raises k in
        place); returns floor [B, K]: column j - 1, the expected tokens draft j must promise to be kept (its
        seconds at the batch's expected rate), and which decoding rows [n] draft such a chain; (None, None)
        when no row does."""
        kd, qd = k[decoding], q[decoding]
        chains = self.confident.copy()
        chains[list(offered)] = False  # drafted already, at the cap
        extend = (kd > 0) & chains[qd]
        if not extend.any():
            return None, None
        rows = np.arange(len(decoding))
        tokens = outlook.expected()[rows, qd, np.minimum(kd, outlook.k_cap)]
        rate = tokens.sum() / prices.seconds(kd, qd).sum()
        k[decoding] = np.where(extend, np.maximum(kd, caps[rows, qd]), kd)
        width = max(int(k.max(initial=0)), 1)
        floor = np.full((len(k), width), np.inf)
        floor[decoding] = rate * prices.per_draft(qd, width)
        self.rate = rate
        return floor, extend

    def _stopper(self, index: int, floor: np.ndarray):
        """keep_drafting for proposer `index`'s call over rows with these floors [rows, K]. A chain drafts one
        forward per depth whatever the batch, so going one deeper costs its measured seconds per depth (where
        measured: a linear cost model's per-token draft price misses it) once, shared by the rows that go on:
        rows whose next draft is expected to beat its floor go on together if their summed gain pays for that
        forward. The next draft's confidence is not known before it is drafted: it is expected to survive at
        its depth's calibrated rate (`ConfidenceCalibration.depth_rates`) times the survival so far."""
        depth, measured = self.depth_seconds
        depth_tokens = self.rate * depth if measured >= 2 else 0.0
        rates = self.calibration.depth_rates(index)

        def keep(rows: np.ndarray, confidence: np.ndarray) -> np.ndarray:
            j = confidence.shape[1]  # drafts so far; the next one is draft j + 1 (floor column j)
            survival = self.calibration.survival(np.full(len(rows), index), confidence)[:, -1]
            gain = survival * rates[min(j, len(rates) - 1)] - floor[rows, j]
            going = gain > 0
            return going if gain[going].sum() >= depth_tokens else np.zeros(len(rows), dtype=bool)
        return keep

    def observe_step(self, record) -> None:
        """Keep the verify time of one-sequence decode steps per token count, and the draft time per chain depth
        of steps that ran a confidence-stopped chain (recent means); count steps, and when one sequence drafted."""
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

    def _measured_marginal(self, k_cap: int, kv: float) -> np.ndarray | None:
        """[k_cap + 1] target seconds k drafts add to a one-sequence step: measured where this run has timed
        that many tokens (at least twice), elsewhere the cost model scaled by its mean error on the timed ones.
        On CPU kernels the step time is not linear in tokens (flat up to a tile, steep past it), which a
        line fitted over all batch sizes misses; None until something was timed."""
        timed = {n: mean for n, (mean, steps) in self.alone.items() if steps >= 2 and n <= k_cap + 1}
        if not timed:
            return None
        model = self.costs.target(np.arange(1, k_cap + 2, dtype=np.float64), kv)  # [k_cap + 1], 1.. tokens
        at = model.tolist()
        scale = float(np.mean([timed[n] / at[n - 1] for n in timed]))
        step = scale * model
        for n, seconds in timed.items():
            step[n - 1] = seconds
        return step - step[0]

    def _call(self, name: str, batch: ProposerInput, rows, max_draft, keep_drafting=None) -> Proposal:
        """Proposer `name`'s drafts for these rows of the step, at most max_draft[i] for row i."""
        return self.subs[name].propose(ProposerInput(
            slots=[batch.slots[r] for r in rows],
            contexts=[batch.contexts[r] for r in rows],
            max_draft=[int(m) for m in max_draft],
            generator=batch.generator,
            hidden=[batch.hidden[r] for r in rows] if batch.hidden is not None else None,
            keep_drafting=keep_drafting,
        ))


def _stack_probs(proposal: Proposal, probs: dict[int, torch.Tensor]) -> torch.Tensor:
    """[B, K, V] draft distributions: the sampled rows' own, one-hot for deterministic drafts."""
    B, K = proposal.draft_ids.shape
    some = next(iter(probs.values()))
    out = torch.zeros(B, K, some.shape[-1], dtype=some.dtype, device=some.device)
    ids = proposal.draft_ids.to(some.device)
    out.scatter_(2, ids[:, :, None], 1.0)
    for r, p in probs.items():
        out[r, : p.shape[0]] = p
    return out
