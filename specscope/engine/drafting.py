"""One step's drafting: ask the draft policy what each sequence proposes, run the proposers, report the outcome.

    drafter = Drafter({"ngram": ngram, "draft": draft}, Adaptive(("ngram", "draft"), costs, confidence=...))
    proposal = drafter.propose(batch)             # in Engine.step, before the verify forward
    drafter.observe(rows, accepted, finished)     # after verification: what each row kept
    drafter.observe_step(record)                  # the step's measured times

The decisions are the policy's (`specscope/policy/`: fixed k, adaptive — the same classes the
simulator replays); this module only carries them out on real proposers:

- a proposer whose drafts are free prefixes of longer ones (`drafts_are_free_prefixes`: the n-gram)
  drafts first, at the cap, so the decision knows how many drafts each sequence can get (`caps`);
  each sequence that chooses it keeps its first k;
- every other proposer drafts for the sequences that chose it; a feature head (EAGLE) sees every
  sequence every step, drafting or not, to keep its cache in step with the target's features;
- a proposer that reports its confidence per draft gets the policy's in-step stop (`keep_drafting`)
  where the policy planned chains, and the drafts the policy keeps (`stop_drafting`; told which chains
  were sampled, whose drafts it may not cut on their own confidence);
- a proposer that returns fewer drafts than asked is charged for what it returned.

The engine tells the policy what was accepted (`observe`): no proposer or policy reads it back from
the context. With one proposer and a fixed k, this is one `propose` call for the decoding sequences.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.errors import SpecscopeError
from specscope.policy.base import Decision, Policy, StepView


class Drafter:
    """The proposers of a run and the policy that decides, per sequence and step, which drafts how many tokens."""

    def __init__(self, proposers: dict[str, Proposer], policy: Policy, label: str | None = None):
        self.proposers, self.policy = dict(proposers), policy
        self.names = tuple(self.proposers)
        self.subs = [self.proposers[name] for name in self.names]
        kinds = {tuple(getattr(p, "hidden_layers", ())) for p in self.subs if p.needs_hidden}
        if len(kinds) > 1:
            raise SpecscopeError(f"--method {','.join(self.names)}: eagle3 reads other target features than "
                                 "eagle/mtp; combine eagle3 only with ngram or draft")
        self.hidden_layers = kinds.pop() if kinds else ()  # target layers the feature heads read; () = last hidden
        self.needs_hidden = any(p.needs_hidden for p in self.subs)
        self.supports_tree = len(self.subs) == 1 and self.subs[0].supports_tree
        self.free = [i for i, p in enumerate(self.subs) if p.drafts_are_free_prefixes]
        wants = policy.reads_confidence
        self.confident = np.array([bool(p.reports_confidence) and wants for p in self.subs])
        self.label = label or (self.subs[0].label if len(self.subs) == 1 else "+".join(p.label for p in self.subs))
        self.decision_seconds = 0.0  # the policy's decide + observe time since `take_decision_seconds`
        self.chosen = np.zeros((len(self.subs) + 1, 2), dtype=np.int64)  # [proposer or none, (sequence-steps, drafts)]
        self._step = None  # (view, decision that ran, confidences [n, K]) of the step in flight

    @property
    def name(self) -> str:
        return self.names[0] if len(self.names) == 1 else ",".join(self.names)

    def bind(self, num_slots: int, max_len: int) -> None:
        for p in self.subs:
            p.bind(num_slots, max_len)
        self.policy.reset(num_slots)
        self.chosen[:] = 0
        self._step = None

    def reset(self, slot: int) -> None:
        """A new sequence takes `slot`."""
        for p in self.subs:
            p.reset(slot)
        self.policy.clear([slot])

    def nbytes(self) -> int:
        return sum(p.nbytes() for p in self.subs)

    # ------------------------------------------------------------------------------------------ drafting

    def propose(self, batch: ProposerInput) -> Proposal:
        """The step's drafts for every sequence of `batch` (`max_draft[i]` = 0: a prefill row, no drafts)."""
        B = len(batch.slots)
        cap = np.asarray(batch.max_draft, dtype=np.int64)
        decoding = np.flatnonzero(cap > 0)
        self._step = None
        if not decoding.size:
            return self._assemble(batch, decoding, {}, np.zeros(0, np.int64), np.zeros(0, np.int64), None)[0]
        k_cap = int(cap.max())
        caps = np.repeat(cap[decoding][:, None], len(self.subs), axis=1)
        offered: dict[int, Proposal] = {}
        for index in self.free:  # draft first: k is then chosen knowing what exists
            offered[index] = self._call(index, batch, decoding, caps[:, index])
            caps[:, index] = offered[index].num_draft.cpu().numpy()
        slots = np.asarray(batch.slots)[decoding]
        kv = float(sum(len(c) for c in batch.contexts))
        view = StepView(request=slots, position=np.array([len(batch.contexts[r]) for r in decoding]),
                        acc_len=None, batch_size=B, batch_kv=np.full(len(decoding), kv), caps=caps, k_cap=k_cap,
                        confident=self.confident, offers_known=len(offered) == len(self.subs))
        started = time.perf_counter()
        decision = self.policy.decide(view)
        self.decision_seconds += time.perf_counter() - started
        k, q = np.asarray(decision.k, dtype=np.int64), np.asarray(decision.proposer, dtype=np.int64)
        proposal, ran, confidence = self._assemble(batch, decoding, offered, k, q, view)
        self._step = (view, Decision(ran, q), confidence)
        return proposal

    def _assemble(self, batch: ProposerInput, decoding, offered: dict[int, Proposal], k, q, view):
        """Run the decided drafts (k [n], proposer q [n] for the decoding rows), stop confidence-reporting chains
        where the policy says, count the choices: (the step's proposal, drafts run [n], their confidences [n, K])."""
        B = len(batch.slots)
        drafts = [np.zeros(0, dtype=np.int64)] * B
        probs: dict[int, torch.Tensor] = {}
        parents: dict[int, np.ndarray] = {}  # batch row -> tree parents of its drafts (a tree proposer)
        sure: dict[int, np.ndarray] = {}  # decision row -> confidences of its drafts
        chained = np.zeros(len(decoding), dtype=bool)
        for index, proposer in enumerate(self.subs):
            chosen = (k > 0) & (q == index)
            if index in offered:  # drafted already, at the cap: keep each chosen row's first k
                rows, sub = np.arange(len(decoding)), offered[index]
            else:
                # A feature head sees every sequence every step, drafting or not: it keeps its cache in step with
                # the target's features, which the engine hands over for the last step only.
                rows = np.arange(len(decoding)) if proposer.needs_hidden else np.flatnonzero(chosen)
                if not rows.size and not proposer.needs_hidden:
                    continue
                stop = self.policy.keep_drafting(index, rows) if self.confident[index] and chosen.any() else None
                asked = np.where(chosen[rows], k[rows], 0)
                if proposer.needs_hidden:  # the call's rows are the whole batch's: prefill rows are asked for none
                    wide = np.zeros(B, dtype=np.int64)
                    wide[decoding] = asked
                    stop = _over_decoding_rows(stop, decoding, B) if stop is not None else None
                    sub = self._call(index, batch, np.arange(B), wide, stop)
                    sub = _rows_of(sub, decoding)
                else:
                    sub = self._call(index, batch, decoding[rows], asked, stop)
            ids, num = sub.draft_ids.cpu().numpy(), sub.num_draft.cpu().numpy()
            tree = None if sub.parents is None else sub.parents.cpu().numpy()
            conf = sub.extra.get("confidence")  # reported where asked: the chains `stop` ran
            if conf is not None:
                conf = conf.float().cpu().numpy()
                self.policy.chain_depth(int(num.max(initial=0)))
            for j, r in enumerate(rows):
                if not chosen[r]:
                    continue
                n = min(int(num[j]), int(k[r]))
                drafts[decoding[r]] = ids[j, :n].copy()
                if tree is not None:
                    parents[int(decoding[r])] = tree[j, :n]
                if conf is not None:
                    sure[int(r)] = conf[j, :n].copy()
                    chained[r] = True
                if sub.draft_probs is not None:
                    probs[int(decoding[r])] = sub.draft_probs[j, :n]
        confidence = None
        if sure:
            confidence = np.full((len(decoding), max(len(c) for c in sure.values())), np.nan)
            for r, c in sure.items():
                confidence[r, : len(c)] = c
        ran = np.fromiter((len(drafts[b]) for b in decoding), dtype=np.int64, count=len(decoding))
        if chained.any():
            index = np.flatnonzero(chained)
            sampled = np.array([int(decoding[r]) in probs for r in index], dtype=bool)
            kept = self.policy.stop_drafting(view, index, confidence[index], ran=ran, drafted=ran[index],
                                             sampled=sampled)
            for r, n in zip(index, kept):
                drafts[decoding[r]] = drafts[decoding[r]][:n]
                confidence[r, n:] = np.nan
                if int(decoding[r]) in probs:
                    probs[int(decoding[r])] = probs[int(decoding[r])][:n]
            ran[index] = kept
        if decoding.size:
            chose = np.where(ran > 0, q, len(self.subs))  # the last row: drafted nothing
            np.add.at(self.chosen, (chose, 0), 1)
            np.add.at(self.chosen, (chose, 1), ran)
        proposal = Proposal.from_lists(drafts)
        if probs:
            proposal.draft_probs = _stack_probs(proposal, probs)
        if parents:
            tree = np.full(tuple(proposal.draft_ids.shape), -1, dtype=np.int64)
            for b, row in parents.items():
                tree[b, : len(row)] = row
            proposal.parents = torch.from_numpy(tree)
        return proposal, ran, confidence

    def _call(self, index: int, batch: ProposerInput, rows: np.ndarray, max_draft, keep_drafting=None) -> Proposal:
        """Proposer `index`'s drafts for these rows of the batch, at most max_draft[i] for row i."""
        return self.subs[index].propose(ProposerInput(
            slots=[batch.slots[r] for r in rows],
            contexts=[batch.contexts[r] for r in rows],
            max_draft=[int(m) for m in max_draft],
            generator=batch.generator,
            hidden=[batch.hidden[r] for r in rows] if batch.hidden is not None else None,
            keep_drafting=keep_drafting,
        ))

    # ----------------------------------------------------------------------------------------- outcome

    def observe(self, accepted: np.ndarray, finished: np.ndarray) -> None:
        """What verification kept of the step's drafts: accepted [n] per decoding row (in the order `propose` saw
        them), finished [n] rows whose sequence ended this step (they teach nothing)."""
        if self._step is None:
            return
        view, ran, confidence = self._step
        view = StepView(view.request, view.position, None, view.batch_size, view.batch_kv, caps=view.caps,
                        confident=view.confident, going=~np.asarray(finished, dtype=bool))
        started = time.perf_counter()
        self.policy.observe(view, ran, np.asarray(accepted) + 1, confidence)
        self.decision_seconds += time.perf_counter() - started
        self._step = None

    def take_decision_seconds(self) -> float:
        """Seconds the policy spent deciding and observing since the last call (the engine's `StepRecord.decision`:
        an online policy's own host time, which the simulator charges it)."""
        seconds, self.decision_seconds = self.decision_seconds, 0.0
        return seconds

    def observe_step(self, record) -> None:
        """The engine's measured times of the step just run (`timing.StepRecord`)."""
        self.policy.observe_step(record)

    def choices(self) -> dict | None:
        """What the run decided, for its summary (adaptive policies; None otherwise): per proposer the share of
        decoding sequence-steps that drafted with it and its mean drafts per such step, the share that drafted
        nothing, and how often the guard followed the model's decision and plain decoding rather than a fixed rule."""
        shares = getattr(self.policy, "guard_shares", None)
        if shares is None:
            return None
        steps = int(self.chosen[:, 0].sum())

        def share(n):
            return round(float(n) / steps, 4) if steps else None

        def mean_k(i):
            return round(float(self.chosen[i, 1] / self.chosen[i, 0]), 3) if self.chosen[i, 0] else None

        model, plain = shares()
        return {
            "sequence_steps": steps,
            "no_draft_share": share(self.chosen[-1, 0]),
            "proposers": {name: {"share": share(self.chosen[i, 0]), "mean_k": mean_k(i)}
                          for i, name in enumerate(self.names)},
            "guard_followed_model_share": model,
            "guard_followed_plain_share": plain,
        }


def _rows_of(proposal: Proposal, rows: np.ndarray) -> Proposal:
    """The proposal's rows `rows` (a call over the whole batch, read as the decoding rows')."""
    pick = torch.as_tensor(rows, dtype=torch.long)
    at = pick.to(proposal.draft_ids.device)
    extra = {key: value[at.to(value.device)] if isinstance(value, torch.Tensor) else value
             for key, value in proposal.extra.items()}
    return Proposal(proposal.draft_ids[at], proposal.num_draft[at],
                    None if proposal.draft_probs is None else proposal.draft_probs[at.to(proposal.draft_probs.device)],
                    extra, None if proposal.parents is None else proposal.parents[at.to(proposal.parents.device)])


def _over_decoding_rows(keep, decoding: np.ndarray, batch_size: int):
    """`keep` (over decoding rows) as a callback over the whole batch's rows (prefill rows never ask)."""
    row = np.full(batch_size, -1, dtype=np.int64)
    row[decoding] = np.arange(len(decoding))
    return lambda index, confidence: keep(row[index], confidence)


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
