"""Sampled SD through the whole engine emits tokens distributed exactly as plain sampling from the target.

For each proposer — none (the control: plain sampling through the same loop), n-gram, the draft model,
a sampled draft tree, EAGLE / EAGLE-3 / MTP heads fitted to the target (`small_vocab.py`), and
`--k adaptive` over n-gram + draft model and over the fitted EAGLE head — the engine samples REQUESTS
continuations of one prompt at temperature 0.8 with top-p 0.95, batch 128 with continuous batching:
prefill rows share steps with drafting rows (padded batches), n-gram rows without a match share steps
with rows that have one, and acceptance differs row to row. k = 2 (the 3x2 tree accepts at most 2
too; adaptive decides 0..2 per sequence and step), so output position 0 is the prefill's token,
positions 1..3 hold the first verification step's accepted drafts, corrections and full-acceptance
bonus, and positions 2..3 also the second step's. At each of positions 0..3 the emitted tokens are
compared with the exact marginal of plain sampling (`small_vocab.exact_marginals`, a sum over 16^3
contexts) by a pooled chi-square at level 1e-6 (`stats_helpers.py`).

The adaptive runs decide under ADAPTIVE_COSTS, where drafting pays (most decoding row-steps draft and
drafts are accepted: asserted) and their chains stop on the drafts' confidences: its proposer, the
n-gram or a sampled draft, is chosen per row and step, and the stop cuts some chains at one draft and
lets others take two (asserted). They run ADAPTIVE_MAX_NEW tokens (only the first four are checked): a
sequence that ends at its length limit teaches the policy nothing, so at 4 tokens every fully accepted
chain of the first step would be hidden from its calibration.

Where adaptive decides how many drafts a row keeps, the marginals dilute what the decision could bias,
so `test_adaptive_second_drafts_match_target` checks the decision's own population: every decoding
row-step that kept two drafts and accepted the first, the token the engine committed at the second
draft's position against the exact next-token distribution of its context (expected counts: the sum
of those rows' distributions; a pooled chi-square at 1e-6, conservative for unequal rows). Correct
code decides to keep a draft before it is drawn, so the token there is distributed as p; a policy that
drops a sampled draft on its own confidence (q at the drawn token, as the post-hoc stop once did) keeps
it only where q favours it, and the check sees it (chi-square distance 0.026 per row over the head's
~5,500 rows, 0.006 over the n-gram + draft run's ~17,500: p < 1e-16 in both).

Power: with 6,000 tokens per position and ~14 degrees of freedom, each position's test rejects any
distortion of chi-square distance sum((f - p)^2 / p) >= 0.014 with probability >= 0.99
(`test_stated_power`). A draft that reports q at temperature 1 while sampling at 0.8 is far above
that (see benchmarks/mutation_check.py for the chi-square each planted bug reaches); margins over 20
seeds: benchmarks/distribution_margins.py.

Run: pytest tests/engine/test_distribution_e2e.py (1-2 min on 2 shared cores, fitting the heads included).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specscope.costs.model import CostModel, LinearCost
from specscope.engine.drafting import Drafter
from specscope.engine.engine import Engine
from specscope.engine.proposers import build_proposer
from specscope.engine.sampling import sampling_probs
from specscope.engine.scheduler import Request
from specscope.policy.adaptive import Adaptive
from specscope.policy.confidence import ConfidenceParams
from specscope.settings import AdaptiveSettings, RunSettings

from small_vocab import VOCAB, exact_marginals, one_thread
from stats_helpers import chi2_detail, detectable_distance, pooled_cells, token_counts

TEMPERATURE, TOP_P = 0.8, 0.95
PROMPT = [5, 12, 0, 5, 12, 0, 5]  # repeats, so n-gram lookup drafts from the first step on
POSITIONS = 4  # output positions checked: 0 (prefill) .. 3
REQUESTS = 6000
BATCH = 128
K = 2
MAX_DISTANCE = 0.014
HEADS = ("eagle", "eagle3", "mtp")
ADAPTIVE_PREFIX = "adaptive:"
ADAPTIVE = ("adaptive:ngram,draft", "adaptive:eagle")
METHODS = ("none", "ngram", "draft", "draft-tree") + HEADS + ADAPTIVE
ADAPTIVE_MAX_NEW = 12
# Seconds per step of the adaptive runs' decisions: a step's fixed cost dominates (a batch of 128 rows costs
# ~13 s, ~0.1 s per token), a draft adds the verification of its token (0.02 s) and, from the draft model,
# a draft forward (0.02 s; the n-gram and the head are free), so a draft pays where it is likely accepted,
# a second one only where the first is likely to survive, and the n-gram wins where it matches well.
ADAPTIVE_COSTS = CostModel("e2e", LinearCost(10.0, 0.02, 0.0), 0.1,
                           {"ngram": LinearCost(0.0, 0.0, 0.0), "draft": LinearCost(0.05, 0.02, 0.0),
                            "eagle": LinearCost(0.05, 0.0, 0.0)})


def run_settings(method: str, seed: int, heads: dict | None = None) -> RunSettings:
    """The run's settings for one of METHODS, sampling at TEMPERATURE / TOP_P, batch BATCH."""
    adaptive = method.startswith(ADAPTIVE_PREFIX)
    common = dict(batch_size=BATCH, max_new_tokens=ADAPTIVE_MAX_NEW if adaptive else POSITIONS,
                  temperature=TEMPERATURE, top_p=TOP_P, seed=seed)
    names = method.removeprefix(ADAPTIVE_PREFIX).split(",")
    if names == ["draft-tree"]:
        return RunSettings.build(method="draft", k=K, draft_model="self:2", tree="3x2", **common)
    head = next((n for n in names if n in HEADS), None)
    return RunSettings.build(
        method=",".join(names), k=0 if names == ["none"] else K, ngram_min=1, ngram_max=3, draft_model="self:2",
        head=None if head is None else str(heads[head]),
        adaptive=AdaptiveSettings(cost_model=ADAPTIVE_COSTS.name, k_cap=K) if adaptive else None, **common)


def drafter(model, settings: RunSettings):
    """What drafts: the settings' proposer (a fixed k), or under adaptive its proposers under the adaptive policy,
    deciding under ADAPTIVE_COSTS (as `specscope.study.engine_backend` builds it)."""
    if settings.adaptive is None:
        return build_proposer(settings.proposer.method, settings, target=model)
    names = tuple(settings.proposer.methods)
    subs = {name: build_proposer(name, settings, target=model) for name in names}
    return Drafter(subs, Adaptive(names, ADAPTIVE_COSTS, confidence=ConfidenceParams()))


def run_engine(model, method: str, seed: int, heads: dict | None = None, requests: int = REQUESTS):
    """(tokens [requests, POSITIONS], engine, finished sequences) of one sampled run of `requests` copies of PROMPT."""
    settings = run_settings(method, seed, heads)
    engine = Engine(model, drafter(model, settings), settings)
    seqs = list(engine.generate([Request(f"r{i}", PROMPT) for i in range(requests)]))
    assert all(s.error is None and s.num_output >= POSITIONS for s in seqs)
    return torch.from_numpy(np.stack([s.output[:POSITIONS] for s in seqs])), engine, seqs


def marginal_rows(tokens: torch.Tensor, marginals: torch.Tensor) -> list[tuple]:
    """[(position, samples, chi-square, degrees of freedom, critical value)] of tokens [n, POSITIONS]."""
    rows = []
    for j in range(POSITIONS):
        stat, df, crit = chi2_detail(token_counts(tokens[:, j], VOCAB), marginals[j])
        rows.append((j, len(tokens), stat, df, crit))
    return rows


def e2e_results(model, marginals, method: str, seed: int, heads: dict | None = None):
    """[(position, samples, chi-square, degrees of freedom, critical value)], engine, sequences."""
    tokens, engine, seqs = run_engine(model, method, seed, heads)
    return marginal_rows(tokens, marginals), engine, seqs


@pytest.fixture(scope="module")
def marginals(small_model):
    return exact_marginals(small_model, PROMPT, TEMPERATURE, TOP_P, depth=POSITIONS)


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def runs(small_model, fitted_heads):
    """method -> run_engine(method, seed 0); the adaptive runs are kept for the second-draft test."""
    kept = {}

    def get(method: str):
        if method in kept:
            return kept[method]
        run = run_engine(small_model, method, 0, fitted_heads)
        if method in ADAPTIVE:
            kept[method] = run
        return run

    return get


@pytest.mark.parametrize("method", METHODS)
def test_sampled_sd_matches_plain_sampling_at_every_position(marginals, runs, method):
    tokens, engine, seqs = runs(method)
    rows = marginal_rows(tokens, marginals)
    for j, n, stat, _, crit in rows:
        assert stat < crit, f"{method} position {j}: chi-square {stat:.1f} >= {crit:.1f} on {n} tokens"
    if method == "none":
        assert all(s.proposed == 0 for s in engine.steps)
        return
    decode = [s for s in engine.steps if s.num_prefill < s.num_seqs]
    assert any(s.num_prefill > 0 for s in decode), "prefill rows (no draft) should share steps with drafting rows"
    first = np.array([s.accepted[0] for s in seqs if s.proposed and s.proposed[0] > 0])
    assert (first == 0).any() and (first >= K).any(), "acceptance should be ragged: none and all in one batch"
    drafting = sum(1 for s in seqs for p in s.proposed if p > 0)  # (sequence, step) pairs that drafted
    accepted = sum(s.accepted for s in decode)
    # per drafting row-step; the n-gram copies earlier tokens, rarely likely ones; adaptive drafts one token where
    # only the first is likely accepted
    floor = {"ngram": 0.05, "adaptive:eagle": 0.3}.get(method, 0.4)
    assert accepted >= floor * drafting, (method, accepted, drafting)
    if method in ADAPTIVE:
        choices = engine.drafter.choices()
        assert choices["no_draft_share"] < 0.5, choices  # most decoding row-steps draft under ADAPTIVE_COSTS
        assert all(c["share"] > 0.02 for c in choices["proposers"].values()), choices  # every proposer is chosen
        lengths = [p for s in seqs for p in s.proposed]
        assert lengths.count(1) > 0.1 * len(lengths) and lengths.count(K) > 0.1 * len(lengths), "chains of 1 and 2"


# ---------------------------------------------------------------------------------------------
# Adaptive: the population whose draft count the policy decided.

SECOND_DRAFT_ROWS = {"adaptive:ngram,draft": 12_000, "adaptive:eagle": 4_000}  # rows each run is guaranteed
SECOND_DRAFT_DISTANCE = {"adaptive:ngram,draft": 0.008, "adaptive:eagle": 0.024}  # power >= 0.99 from here


def second_draft_rows(seqs) -> tuple[list[list[int]], list[int]]:
    """(context, committed token) at the second draft's position of every decoding row-step that kept two drafts
    and accepted the first (the step's first token is at output index o, the second draft's at o + 1)."""
    contexts, tokens = [], []
    for seq in seqs:
        o = 1  # the prefill's token is output 0
        for proposed, accepted in zip(seq.proposed, seq.accepted):
            if proposed >= 2 and accepted >= 1:
                contexts.append(PROMPT + seq.output[: o + 1].tolist())
                tokens.append(int(seq.output[o + 1]))
            o += accepted + 1
    return contexts, tokens


@torch.inference_mode()
def next_token_probs(model, contexts: list[list[int]], rows: int = 512) -> torch.Tensor:
    """[len(contexts), VOCAB] float64: the target's sampling distribution after each context, exactly (one
    forward per distinct context)."""
    distinct = list(dict.fromkeys(map(tuple, contexts)))
    out = []
    for i in range(0, len(distinct), rows):
        part = distinct[i : i + rows]
        cache = model.new_cache(len(part), max(len(c) for c in part))
        logits = model.forward_chunks(cache, list(range(len(part))), [torch.tensor(c) for c in part]).logits
        out.append(sampling_probs(torch.stack([x[-1] for x in logits]), TEMPERATURE, TOP_P).double())
    where = {c: i for i, c in enumerate(distinct)}
    return torch.cat(out)[[where[tuple(c)] for c in contexts]]


def second_draft_result(model, seqs) -> tuple[int, float, int, float]:
    """(rows, chi-square, degrees of freedom, critical value) of the second-draft tokens against their p."""
    contexts, tokens = second_draft_rows(seqs)
    expected = next_token_probs(model, contexts).sum(0)
    stat, df, crit = chi2_detail(token_counts(tokens, VOCAB), expected)
    return len(tokens), stat, df, crit


@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_second_drafts_match_target(small_model, runs, method):
    _, _, seqs = runs(method)
    n, stat, df, crit = second_draft_result(small_model, seqs)
    assert n >= SECOND_DRAFT_ROWS[method], (method, n)
    assert stat < crit, f"{method} second drafts: chi-square {stat:.1f} >= {crit:.1f} on {n} row-steps"
    assert detectable_distance(SECOND_DRAFT_ROWS[method], df) <= SECOND_DRAFT_DISTANCE[method], (method, df)


def test_stated_power(marginals):
    """Every position's test has power >= 0.99 against any distortion of chi-square distance >= MAX_DISTANCE."""
    for j in range(POSITIONS):
        df = len(pooled_cells(REQUESTS, marginals[j])) - 1
        assert detectable_distance(REQUESTS, df) <= MAX_DISTANCE, (j, df)


def test_exact_marginals_match_a_direct_computation(small_model, marginals):
    """The reference itself: position 1's marginal from 16 explicit forward passes agrees with the batched sum."""
    cache = small_model.new_cache(1, len(PROMPT) + 1)
    first = sampling_probs(small_model.forward_chunks(cache, [0], [torch.tensor(PROMPT)]).logits[0][-1],
                           TEMPERATURE, TOP_P).double()
    second = torch.zeros(VOCAB, dtype=torch.float64)
    for t in range(VOCAB):
        if first[t] > 0:
            cache = small_model.new_cache(1, len(PROMPT) + 1)
            logits = small_model.forward_chunks(cache, [0], [torch.tensor(PROMPT + [t])]).logits[0][-1]
            second += first[t] * sampling_probs(logits, TEMPERATURE, TOP_P).double()
    torch.testing.assert_close(marginals[0], first, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(marginals[1], second, rtol=1e-5, atol=1e-6)
    assert (marginals[0] == 0).any()  # top-p really cuts tokens here
