"""Per-position acceptance traces: output equals plain greedy, values match brute-force verification and `run`."""

import numpy as np
import pytest
import torch

from specscope.engine.proposers import ProposerInput, build_proposer
from specscope.settings import RunSettings
from specscope.engine.proposers.draft import DraftModelProposer
from specscope.engine.tracing import acc_lengths, collect_traces
from specscope.engine.verify import verify_greedy

from sd_helpers import repetitive_requests, run

K_MAX = 6
MAX_NEW = 20


def proposers(model):
    settings = RunSettings.build(k=K_MAX, ngram_min=2, ngram_max=4, draft_model="self:2")
    return {name: build_proposer(name, settings, target=model) for name in ("ngram", "draft")}


@pytest.fixture(scope="module")
def traced(tiny_model):
    requests = repetitive_requests(6, seed=3)
    return [(seq, acc) for seq, acc, _ in collect_traces(tiny_model, proposers(tiny_model), requests, K_MAX, 4,
                                                          MAX_NEW, (2,))]


@pytest.fixture(scope="module")
def traced_confidence(tiny_model):
    requests = repetitive_requests(6, seed=3)
    return list(collect_traces(tiny_model, proposers(tiny_model), requests, K_MAX, 4, MAX_NEW, (2,)))


def brute_force(model, name, seq):
    """acc_len by the definition: a fresh k_max draft and a target forward at every position."""
    proposer = build_proposer(name, RunSettings.build(k=K_MAX, ngram_min=2, ngram_max=4, draft_model="self:2"), target=model)
    full, P, G = seq.context, seq.prompt_len, seq.num_output
    proposer.bind(1, len(full) + K_MAX + 2)
    cache = model.new_cache(1, len(full) + K_MAX + 2)
    values = [1]
    for i in range(1, G):
        proposer.reset(0)
        ctx = full[: P + i]
        proposal = proposer.propose(ProposerInput([0], [ctx], [K_MAX]))
        n = int(proposal.num_draft[0])
        cache.set_length(0, 0)
        logits = model.forward_chunks(cache, [0], [np.concatenate((ctx, proposal.draft_ids[0, :n].numpy()))]).logits[0]
        target = logits[-(n + 1):].argmax(-1)[None]
        accepted, _ = verify_greedy(target, proposal.draft_ids[:, :n], torch.tensor([n]))
        values.append(min(int(accepted[0]) + 1, G - i))
    return values


def test_outputs_equal_plain_greedy_and_values_are_valid(tiny_model, traced):
    plain, _ = run(tiny_model, repetitive_requests(6, seed=3), max_new=MAX_NEW)
    for seq, acc in traced:
        assert seq.output.tolist() == plain[seq.request.id].output.tolist()
        for name, values in acc.items():
            assert len(values) == seq.num_output and values[0] == 1
            assert values.min() >= 1 and values.max() <= K_MAX + 1
            assert all(v <= seq.num_output - i for i, v in enumerate(values))
    assert sum(int(v.sum()) - len(v) for _, acc in traced for v in acc.values()) > 0  # some drafts accepted


def test_values_match_brute_force_verification(tiny_model, traced):
    for seq, acc in traced[:3]:
        for name in ("ngram", "draft"):
            assert acc[name].tolist() == brute_force(tiny_model, name, seq), (name, seq.request.id)


@pytest.mark.parametrize("method,k", [("ngram", 3), ("draft", 2), ("draft", 5)])
def test_fixed_k_run_is_reproduced_from_trace(tiny_model, traced, method, k):
    out, _ = run(tiny_model, repetitive_requests(6, seed=3), method, k, 4, "self:2", max_new=MAX_NEW)
    for seq, acc in traced:
        ran, pos = out[seq.request.id], 1
        for proposed, accepted in zip(ran.proposed, ran.accepted):
            assert accepted == min(acc[method][pos] - 1, proposed), (seq.request.id, pos)
            pos += accepted + 1
        assert pos == seq.num_output


def test_lazy_chain_equals_fresh_drafting(tiny_model, traced):
    """Reusing a greedy draft chain across positions gives the same values as drafting afresh."""

    class FreshDraft(DraftModelProposer):
        shift_consistent = False  # forces a fresh k_max draft at every position

    fresh = FreshDraft(RunSettings.build(k=K_MAX, draft_model="self:2"), target=tiny_model)
    seqs = [s for s, _ in traced]
    for seq, values in zip(seqs, acc_lengths(fresh, seqs, K_MAX)):
        assert values.tolist() == dict(traced)[seq]["draft"].tolist()


def test_draft_confidence_is_the_drafts_probability_at_each_position(tiny_model, traced_confidence):
    """The recorded confidence at position i is the draft's top softmax probability after prompt + output[:i]
    (a teacher-forced pass of the self:2 draft); the n-gram reports none."""
    checked = 0
    for seq, acc, confidence in traced_confidence:
        assert set(confidence) == {"draft"}
        values = confidence["draft"]
        assert len(values) == len(acc["draft"]) and values[0] == []
        assert all(isinstance(v, float) for v in values[1:-1])  # every position a step can draft at
        cache = tiny_model.new_cache(1, len(seq.context), num_layers=2)
        logits = tiny_model.forward_chunks(cache, [0], [seq.context], num_layers=2).logits[0]
        expected = torch.softmax(logits[seq.prompt_len - 1 :].float(), dim=-1).amax(dim=-1).numpy()
        for i, v in enumerate(values):
            if v != []:
                assert v == pytest.approx(float(expected[i]), abs=2e-3), (seq.request.id, i)
                checked += 1
    assert checked > 50


def test_confidences_round_trip_through_the_trace_format(tiny_model, traced_confidence, tmp_path):
    from specscope.formats.trace import RequestTrace, Trace, read_trace, write_trace

    seq, acc, confidence = traced_confidence[0]
    trace = Trace([RequestTrace(seq.request.id, seq.request.prompt_token_ids, seq.output.tolist(), acc,
                                draft_confidence=confidence)], ["ngram", "draft"], k_max=K_MAX)
    write_trace(tmp_path / "t.jsonl", trace)
    assert read_trace(tmp_path / "t.jsonl").requests[0].draft_confidence == confidence
