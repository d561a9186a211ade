"""`--k adaptive` in the engine (the adaptive policy run by the drafter): greedy output equals plain decoding; the
engine tells the policy what was accepted; measured times; the CLI's --k / --method checks."""

import subprocess
import sys

import numpy as np
import pytest

from specscope.costs.model import CostModel, LinearCost
from specscope.engine.drafting import Drafter
from specscope.engine.engine import Engine
from specscope.engine.proposers import build_proposer
from specscope.engine.tracing import common_prefix
from specscope.policy.adaptive import REFRESH_STEPS, Adaptive
from specscope.policy.confidence import ConfidenceParams
from specscope.settings import AdaptiveSettings, RunSettings

from sd_helpers import repetitive_requests, run

def adaptive_settings(methods, batch_size=4, k_cap=6):
    """The settings of a `--k adaptive` run over `methods` (the cost model itself is handed to the policy)."""
    return RunSettings.build(method=",".join(methods), draft_model="self:2", batch_size=batch_size, max_new_tokens=24,
                             adaptive=AdaptiveSettings(cost_model="cheap", k_cap=k_cap))


def adaptive_drafter(subs, costs):
    """The engine's `--k adaptive` drafting over these proposers, as `specscope.study.engine_backend` builds it."""
    return Drafter(subs, Adaptive(tuple(subs), costs, confidence=ConfidenceParams()))


CHEAP = CostModel("cheap", LinearCost(1.0, 0.01, 0.0), 0.1,
                  {"ngram": LinearCost(0.0, 0.0, 0.0), "draft": LinearCost(0.05, 0.01, 0.0)})


@pytest.mark.parametrize("methods", [("ngram",), ("draft",), ("ngram", "draft")])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_greedy_adaptive_equals_plain_decoding(tiny_model, methods, batch_size):
    requests = repetitive_requests(8)[: 3 if batch_size == 1 else 8]
    plain = run(tiny_model, requests)[0]
    settings = adaptive_settings(methods, batch_size=batch_size)
    subs = {m: build_proposer(m, settings, target=tiny_model) for m in methods}
    engine = Engine(tiny_model, adaptive_drafter(subs, CHEAP), settings, stop_token_ids=(2,))
    out = {s.request.id: s for s in engine.generate(requests)}
    for rid, seq in out.items():
        assert seq.output.tolist() == plain[rid].output.tolist()
        assert all(0 <= a <= p <= 6 for p, a in zip(seq.proposed, seq.accepted))
    assert sum(sum(s.accepted) for s in out.values()) > 0  # it did speculate, and drafts were kept


def test_the_choices_summary_adds_up_to_what_the_engine_ran(tiny_model):
    settings = adaptive_settings(("ngram", "draft"))
    drafter = adaptive_drafter({m: build_proposer(m, settings, target=tiny_model) for m in ("ngram", "draft")}, CHEAP)
    engine = Engine(tiny_model, drafter, settings, stop_token_ids=(2,))
    seqs = list(engine.generate(repetitive_requests(8)))
    choices = drafter.choices()
    steps = sum(len(s.proposed) for s in seqs)  # every decoding sequence-step, drafting or not
    assert choices["sequence_steps"] == steps
    by = choices["proposers"]
    shares = [by[m]["share"] or 0.0 for m in ("ngram", "draft")] + [choices["no_draft_share"]]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    drafts = sum(round(by[m]["share"] * steps) * by[m]["mean_k"] for m in by if by[m]["mean_k"] is not None)
    assert drafts == pytest.approx(sum(sum(s.proposed) for s in seqs), rel=1e-3)
    assert 0.0 <= choices["guard_followed_model_share"] + choices["guard_followed_plain_share"] <= 1.0


def test_the_policy_learns_what_the_engine_accepted(tiny_model, monkeypatch):
    """No context is compared: the engine hands each decoding row's accepted count to the policy, and a row whose
    sequence finished in the step is not observed (its last step ended with the text, not with a rejection)."""
    settings = adaptive_settings(("ngram",))
    drafter = adaptive_drafter({"ngram": build_proposer("ngram", settings)}, CHEAP)
    seen = []
    observe = drafter.policy.observe

    def spy(view, decision, committed, confidence=None):
        seen.append((view.request.copy(), decision.k.copy(), committed.copy(), view.going.copy()))
        observe(view, decision, committed, confidence)

    monkeypatch.setattr(drafter.policy, "observe", spy)
    engine = Engine(tiny_model, drafter, settings, stop_token_ids=(2,))
    seqs = list(engine.generate(repetitive_requests(8)))
    rows = sum(len(r) for r, _, _, _ in seen)
    assert rows == sum(len(s.proposed) for s in seqs)  # every decoding sequence-step, once
    accepted = sorted(a for s in seqs for a in s.accepted)
    assert sorted(int(c) - 1 for _, _, c, _ in seen for c in c) == accepted
    assert sum(int((~going).sum()) for _, _, _, going in seen) == len(seqs)  # each sequence finished once


def test_an_ngram_is_asked_only_for_the_drafts_its_match_offers(monkeypatch):
    import specscope.policy.adaptive as adaptive_module
    from specscope.engine.proposers.base import ProposerInput

    seen = {}

    def spy(outlook, costs, names, kv, caps=None, marginal=None):
        seen["caps"] = caps.copy()
        return choose(outlook, costs, names, kv, caps, marginal)

    choose = adaptive_module.choose_batch
    monkeypatch.setattr(adaptive_module, "choose_batch", spy)
    drafter = adaptive_drafter({"ngram": build_proposer("ngram", adaptive_settings(("ngram",)))}, CHEAP)
    drafter.bind(3, 64)
    contexts = [np.array([1, 2, 3, 4, 1, 2, 3]), np.array([9, 8, 7, 6, 5, 4, 3]), np.array([4, 5, 6, 4, 5, 6, 4, 5])]
    proposal = drafter.propose(ProposerInput([0, 1, 2], contexts, [6, 6, 6]))
    # "1 2 3" occurred before, followed by [4 1 2 3] (to the context's end); no match; "4 5" by [6 4 5]
    assert seen["caps"][:, 0].tolist() == [4, 0, 3]
    num = proposal.num_draft.tolist()
    assert num[1] == 0 and num[0] > 0 and num[2] > 0  # drafting pays at these costs: each takes what exists
    assert proposal.draft_ids[0, : num[0]].tolist() == [4, 1, 2, 3][: num[0]]
    assert proposal.draft_ids[2, : num[2]].tolist() == [6, 4, 5][: num[2]]


@pytest.mark.parametrize("args,message", [
    (["--method", "ngram,draft", "--k", "3"], "several proposers need --k adaptive"),
    (["--method", "ngram", "--k", "many"], "--k 'many'"),
    (["--method", "none", "--k", "adaptive"], "--k adaptive needs a proposer"),
    (["--method", "ngram,ngram", "--k", "adaptive"], "names a proposer twice"),
    (["--method", "ngram,", "--k", "adaptive"], "has an empty name"),
    (["--method", "ngram,none", "--k", "adaptive"], "'none' is plain decoding"),
])
def test_run_rejects_bad_k_in_one_line(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "specscope", "run", *args, "-o", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_one_sequence_prices_drafts_with_the_verify_times_it_measured():
    from specscope.engine.timing import StepRecord

    policy = Adaptive(("ngram",), CHEAP, confidence=ConfidenceParams())
    policy.reset(1)
    assert policy._measured_marginal(6, 100.0) is None  # nothing timed yet: the cost model alone
    for tokens, seconds in [(1, 1.0), (1, 1.0), (4, 1.1), (4, 1.1), (4, 1.1), (9, 3.0), (9, 3.0)]:
        policy.observe_step(StepRecord(0, seconds, 0, 0, 1, 0, tokens, 100, tokens - 1, 0, 1))
    policy.observe_step(StepRecord(0, 50.0, 0, 0, 2, 0, 4, 100, 2, 0, 2))  # two sequences: not this table
    marginal = policy._measured_marginal(8, 100.0)
    assert marginal[0] == 0 and np.isclose(marginal[3], 0.1) and np.isclose(marginal[8], 2.0)
    model = CHEAP.target(np.arange(1, 10.0), 100.0)
    scale = np.mean([1.0 / model[0], 1.1 / model[3], 3.0 / model[8]])
    assert np.isclose(marginal[1], scale * model[1] - 1.0)  # untimed counts: the model, scaled to the timed ones


def test_one_sequence_that_stopped_drafting_drafts_one_token_per_refresh_period():
    """Not drafting teaches nothing: a sequence alone re-times a draft every REFRESH_STEPS steps, then stops again."""
    from specscope.engine.proposers.base import ProposerInput
    from specscope.engine.timing import StepRecord

    costly = CostModel("costly", LinearCost(1.0, 0.01, 0.0), 0.1, {"ngram": LinearCost(5.0, 1.0, 0.0)})
    drafter = adaptive_drafter({"ngram": build_proposer("ngram", adaptive_settings(("ngram",), k_cap=4))}, costly)
    drafter.bind(1, 4096)
    context = np.array([1, 2, 3] * 4)  # the n-gram always has a match
    drafted = []
    for _ in range(2 * REFRESH_STEPS + 3):
        proposal = drafter.propose(ProposerInput([0], [context], [4]))
        n = int(proposal.num_draft[0])
        drafted.append(n)
        following = context[-3]  # the text goes on repeating: one token is committed
        drafter.observe(np.array([int(n > 0 and int(proposal.draft_ids[0, 0]) == following)]), np.array([False]))
        drafter.observe_step(StepRecord(0, 1.0, 0, 0, 1, 0, 1 + n, len(context), n, 0, 1))
        context = np.append(context, following)
    assert {i: n for i, n in enumerate(drafted) if n} == {REFRESH_STEPS: 1, 2 * REFRESH_STEPS + 1: 1}


def test_a_draft_chain_stops_mid_step_on_its_confidence(tiny_model, monkeypatch):
    """A draft model reports a confidence per draft: the adaptive proposer asks for the longest chain, stops it
    where the calibrated survival no longer pays, and calibrates on what verification kept."""
    requests = repetitive_requests(8)
    plain = run(tiny_model, requests)[0]
    settings = adaptive_settings(("draft",))
    drafter = adaptive_drafter({"draft": build_proposer("draft", settings, target=tiny_model)}, CHEAP)
    assert drafter.confident.tolist() == [True]
    # The stop on the measured seconds of a deeper pass is timing's business (a busy machine stops every chain
    # at one draft): this test checks the stop on the drafts' confidences alone.
    monkeypatch.setattr(drafter.policy, "observe_step", lambda record: None)
    engine = Engine(tiny_model, drafter, settings, stop_token_ids=(2,))
    out = {s.request.id: s for s in engine.generate(requests)}
    for rid, seq in out.items():
        assert seq.output.tolist() == plain[rid].output.tolist()
    proposed = [p for s in out.values() for p in s.proposed if p > 0]
    assert len(set(proposed)) > 1  # chains of different lengths: the stop acted
    assert drafter.policy.calibration.seen.sum() > 0


def test_keep_drafting_ends_a_chain_and_the_next_step_reuses_what_was_fed(tiny_model):
    from specscope.engine.proposers.base import ProposerInput
    from specscope.engine.sampling import draft_confidence

    settings = RunSettings.build(method="draft", k=5, draft_model="self:2")
    stopped, fresh = (build_proposer("draft", settings, target=tiny_model) for _ in range(2))
    for p in (stopped, fresh):
        p.bind(2, 64)
    contexts = [np.array([5, 6, 7, 8, 9]), np.array([3, 4, 5])]
    asked = []

    def keep(rows, confidence):
        asked.append(confidence.shape)
        return rows == 0  # row 1 stops after its first draft

    out = stopped.propose(ProposerInput([0, 1], contexts, [5, 5], keep_drafting=keep))
    assert out.num_draft.tolist() == [5, 1]
    assert asked[0] == (2, 1) and all(shape[0] == 1 for shape in asked[1:])
    conf = out.extra["confidence"]
    cache = tiny_model.new_cache(1, 16, num_layers=2)
    logits = tiny_model.forward_chunks(cache, [0], [contexts[1]], num_layers=2).logits[0][-1:]
    assert float(conf[1, 0]) == pytest.approx(float(draft_confidence(logits, None, None)[0]), abs=1e-5)
    # The next step, after a drafted token was committed, drafts as a fresh proposer does.
    longer = [np.concatenate([c, out.draft_ids[i, :1].numpy()]) for i, c in enumerate(contexts)]
    again = stopped.propose(ProposerInput([0, 1], longer, [4, 4]))
    plain = fresh.propose(ProposerInput([0, 1], longer, [4, 4]))
    assert again.draft_ids.tolist() == plain.draft_ids.tolist()
    assert "confidence" not in plain.extra  # reported only when asked: a plain run skips the softmax


def test_a_step_with_nothing_on_offer_skips_the_decision_and_ends_in_the_same_state(monkeypatch):
    """Steps where the n-gram matches nothing are not decided (no drafts is the only answer), yet proposals,
    estimates and guard scores stay what the full decision gives."""
    import dataclasses

    from specscope.engine.proposers.base import ProposerInput

    rng = np.random.default_rng(3)
    truth = [np.concatenate([rng.integers(10, 60, 40), np.tile([1, 2, 3, 4, 5], 30)]) for _ in range(2)]
    drafters = [adaptive_drafter({"ngram": build_proposer("ngram", adaptive_settings(("ngram",)))}, CHEAP)
                for _ in range(2)]
    full, short = drafters
    decide = full.policy.decide
    monkeypatch.setattr(full.policy, "decide", lambda view: decide(dataclasses.replace(view, offers_known=False)))
    for d in drafters:
        d.bind(2, 512)
    contexts = [t[:8].copy() for t in truth]
    skipped = 0
    for _ in range(60):
        outs = [d.propose(ProposerInput([0, 1], [c.copy() for c in contexts], [6, 6])) for d in drafters]
        assert outs[0].num_draft.tolist() == outs[1].num_draft.tolist()
        assert outs[0].draft_ids.tolist() == outs[1].draft_ids.tolist()
        skipped += short.policy.guard.pending.k is None
        accepted = []
        for b in range(2):  # commit the accepted drafts and the target's next token
            n, L = int(outs[0].num_draft[b]), len(contexts[b])
            accepted.append(common_prefix(outs[0].draft_ids[b, :n].numpy(), truth[b][L : L + n]))
            contexts[b] = truth[b][: L + accepted[-1] + 1]
        for d in drafters:
            d.observe(np.array(accepted), np.zeros(2, dtype=bool))
    assert 5 < skipped < 60  # both kinds of step happened
    fg, sg = full.policy.guard, short.policy.guard
    assert fg.cost.tolist() == sg.cost.tolist() and fg.covered == sg.covered
    assert fg.followed == sg.followed and fg.steps == sg.steps
    for name in ("first_s", "first_f", "hot", "idle", "pool_s", "pool_f", "loss", "at_risk", "stopped"):
        assert getattr(full.policy.estimate, name).tolist() == getattr(short.policy.estimate, name).tolist(), name
