"""Rejection sampling reproduces the target distribution in the places a biased sampler hides.

Chain verifier (`verify_rejection`), vectorised over hundreds of thousands of steps:
- per-position target rows p_j AND per-position draft rows q_j that differ (a sampler that corrects
  later positions with q_0 is caught), both made with temperature and top-p together (zeros in p and q);
- ragged, padded batches (num_draft 0..K in one batch; one-hot drafts padded with token 0 as
  `Proposal.from_lists` does, sampled drafts padded with real-looking q rows that must be ignored);
- every position of every draft length, the correction and the bonus after a full acceptance.
Tree verifier (`verify_tree_rejection`), every node of a 3x2 tree including each leaf's bonus, with
deterministic (distinct top-2) children and with children drawn i.i.d. from q.

Each check is Pearson's chi-square at level ALPHA = 1e-6 (`stats_helpers.py`) on one of:
- `tokens`: the token committed right after a node (chain position) against the target row p there —
  the property itself;
- `outcome`: the pair (which child was accepted, or the bonus; the token) against the exact outcome
  table of the algorithm in `verify.py`, computed here by enumerating the drafts (`node_table`). Its
  token marginal is p (checked in `test_reference_table_marginal_is_the_target`); it sees an
  acceptance bias that the token marginal blurs, so it carries the power statement.

Power (asserted in `test_every_check_has_power`): every check where drafts are accepted rejects a 5 %
acceptance bias (accept with min(1, 1.05 p/q)) with probability >= 0.99 at its guaranteed sample size
(expected visits - 6 sd; each test asserts at least that many). Bonus checks (a leaf's bonus, the bonus
after a full chain acceptance) have power >= 0.99 against drawing the bonus from the parent's row
(the previous chain row), and on padded one-hot rows against removing the padding token. In the
sampled tree a second sibling is reached in at most a quarter of the steps, so the tree runs two
sampled scenarios: one whose root and first child carry the power, one whose second child does.

Run: pytest tests/engine/test_distribution.py (10-15 s on 2 shared cores); margins over 20 seeds and the
power of every check: python benchmarks/distribution_margins.py.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from specscope.engine.sampling import sampling_probs
from specscope.engine.tree import children_lists, parse_tree
from specscope.engine.verify import verify_rejection, verify_tree_rejection

from stats_helpers import ALPHA, chi2_detail, power

V = 6
BIAS = 1.05  # the acceptance bias every acceptance check must catch: min(1, BIAS * p / q)
MIN_POWER = 0.99


# ---------------------------------------------------------------------------------------------
# The exact reference: what one node of the sampler emits, by enumerating its children's drafts.


# p: [V] target row at a node; children: the fixed child tokens (q None), or the number m of children drawn
# i.i.d. from q: [V]; bias: the acceptance factor (1 = the algorithm; 1.05 = the biased variant)
def node_table(p, children, q=None, bias=1.0) -> torch.Tensor:
    """[m + 1, V] float64: row i < m = P(child i accepted, its token x), row m = P(bonus x).

    Recursive rejection sampling as `verify.py` documents it: try the children in order, accept x with
    min(1, p(x)/q(x)) (q one-hot for fixed children), on a rejection p <- normalize(max(p - q, 0)),
    and draw the bonus from the p left when every child is rejected (or the node is a leaf).
    """
    p = torch.as_tensor(p, dtype=torch.float64)
    m = len(children) if q is None else int(children)
    table = torch.zeros(m + 1, V, dtype=torch.float64)
    q = None if q is None else torch.as_tensor(q, dtype=torch.float64)
    draws = [(tuple(children), 1.0)] if q is None else [
        (d, math.prod(float(q[x]) for x in d)) for d in itertools.product(range(V), repeat=m)]
    for tokens, weight in draws:
        if weight == 0:
            continue
        cur, left = p.clone(), weight
        for i, x in enumerate(tokens):
            qx = 1.0 if q is None else float(q[x])
            accept = min(1.0, bias * float(cur[x]) / qx)
            table[i, x] += left * accept
            left *= 1.0 - accept
            if q is None:
                residual = cur.clone()
                residual[x] = 0.0
            else:
                residual = (cur - q).clamp(min=0.0)
            cur = residual / residual.sum() if float(residual.sum()) > 0 else cur
        table[m] += left * cur
    return table


@dataclass
class Spec:
    """One chi-square check before it runs: the exact distribution of its cells, the visits it is guaranteed
    (expected - 6 sd; the test asserts at least that many) and the biases its power is stated against."""

    name: str
    key: tuple  # where the run's counts for it are filed
    probs: torch.Tensor  # exact distribution of the checked cells (flattened)
    n_min: int
    biases: list  # [(label, distribution of the cells under that bias)]; empty: no power statement

    def powers(self) -> list[tuple[str, float]]:
        return [(label, power(self.n_min, self.probs, biased, ALPHA)) for label, biased in self.biases]


def guaranteed(expected: float) -> int:
    """Visits at least this many with probability > 1 - 1e-9 (6 standard deviations below the mean)."""
    return max(0, int(expected - 6 * math.sqrt(expected)))


@dataclass
class Result:
    name: str
    n: int  # samples checked
    stat: float  # chi-square
    df: int
    crit: float  # critical value at ALPHA


def results(specs: list[Spec], counts: dict) -> list[Result]:
    """The chi-square of every check."""
    out = []
    for spec in specs:
        observed = counts[spec.key]
        stat, df, crit = chi2_detail(observed, spec.probs)
        out.append(Result(spec.name, int(observed.sum()), stat, df, crit))
    return out


def assert_results(specs: list[Spec], rows: list[Result]) -> None:
    for spec, r in zip(specs, rows):
        assert r.n >= spec.n_min, f"{spec.name}: {r.n} visits < {spec.n_min} guaranteed"
        assert r.stat < r.crit, f"{spec.name}: chi-square {r.stat:.1f} >= {r.crit:.1f} on {r.n} samples"


# ---------------------------------------------------------------------------------------------
# Chain verification: K = 3, rows from temperature 0.8 and top-p 0.9 together.

K = 3
TEMPERATURE, TOP_P = 0.8, 0.9
CHAIN_ROWS = 100_000  # steps per draft length 0..K (400,000 in one batch)
# target logits per scored row j (row j predicts the token after draft j); token 0 always keeps real mass,
# so a bonus that cannot be the padding token (0) shows
TARGET_LOGITS = torch.log(torch.tensor([
    [0.20, 0.62, 0.06, 0.05, 0.04, 0.03],
    [0.18, 0.04, 0.03, 0.65, 0.06, 0.04],
    [0.16, 0.05, 0.04, 0.03, 0.66, 0.06],
    [0.30, 0.07, 0.33, 0.05, 0.20, 0.05],
]))
DRAFT_LOGITS = torch.log(torch.tensor([  # q_j: the draft's distribution at position j, different per position
    [0.12, 0.70, 0.04, 0.08, 0.03, 0.03],
    [0.05, 0.10, 0.05, 0.70, 0.04, 0.06],
    [0.20, 0.02, 0.05, 0.02, 0.60, 0.11],
]))
P_CHAIN = sampling_probs(TARGET_LOGITS, TEMPERATURE, TOP_P).double()
Q_CHAIN = sampling_probs(DRAFT_LOGITS, TEMPERATURE, TOP_P).double()
FIXED = P_CHAIN[:K].argmax(dim=-1)  # one-hot mode: the draft a deterministic proposer repeats (an n-gram match)
PAD = 0  # Proposal.from_lists pads drafts with token 0


def chain_table(j: int, mode: str, bias: float = 1.0) -> torch.Tensor:
    """[2, V]: (draft j accepted, token) and (rejected, correction token), given position j is reached."""
    if mode == "one-hot":
        return node_table(P_CHAIN[j], [int(FIXED[j])], bias=bias)
    return node_table(P_CHAIN[j], 1, Q_CHAIN[j], bias=bias)


def chain_draws(mode: str, seed: int, rows: int = CHAIN_ROWS):
    """One ragged batch of (K + 1) * rows steps: num_draft = b mod (K + 1). Returns (num_draft, num_accepted, tokens)."""
    gen = torch.Generator().manual_seed(seed)
    n = rows * (K + 1)
    num_draft = torch.arange(n) % (K + 1)
    real = torch.arange(K)[None, :] < num_draft[:, None]
    target = P_CHAIN.float().expand(n, K + 1, V)
    if mode == "one-hot":
        draft_ids = torch.where(real, FIXED.expand(n, K), torch.full((n, K), PAD))
        draft_probs = None
    else:  # padding holds a real-looking draft and its q: the verifier must ignore both
        draft_ids = torch.stack([torch.multinomial(Q_CHAIN[j].float(), n, replacement=True, generator=gen)
                                 for j in range(K)], dim=1)
        draft_probs = Q_CHAIN.float().expand(n, K, V)
    num_accepted, tokens = verify_rejection(target, draft_ids, num_draft, draft_probs, gen)
    return num_draft, num_accepted, tokens


def reach(tables: list[torch.Tensor]) -> float:
    """P(every draft in `tables` accepted)."""
    return math.prod(float(t[0].sum()) for t in tables)


def chain_specs(mode: str, rows: int = CHAIN_ROWS) -> list[Spec]:
    """Per draft length d and position j <= d: the outcome and the tokens where a draft is tried (j < d),
    the bonus after all d drafts were accepted (j = d; a plain decode step in a padded batch when d = 0)."""
    tables = [chain_table(j, mode) for j in range(K)]
    specs = []
    for d in range(K + 1):
        for j in range(d + 1):
            n_min = guaranteed(rows * reach(tables[:j]))
            name = f"chain {mode} d={d} j={j}"
            if j < d:
                biased = chain_table(j, mode, BIAS)
                specs.append(Spec(f"{name} outcome", (d, j, "outcome"), tables[j].flatten(), n_min,
                                  [(f"acceptance x{BIAS}", biased.flatten())]))
                specs.append(Spec(f"{name} tokens", (d, j, "tokens"), P_CHAIN[j], n_min, []))
                continue
            biases = []
            if j > 0:
                biases.append(("bonus from row j - 1", P_CHAIN[j - 1]))
            if d < K and mode == "one-hot":  # the padding token must stay possible
                no_pad = P_CHAIN[j].clone()
                no_pad[PAD] = 0.0
                biases.append(("padding token removed from the bonus", no_pad / no_pad.sum()))
            if d < K and mode == "sampled":  # the padding's q must not be subtracted
                residual = (P_CHAIN[j] - Q_CHAIN[j]).clamp(min=0.0)
                biases.append(("padding q subtracted from the bonus", residual / residual.sum()))
            specs.append(Spec(f"{name} bonus", (d, j, "tokens"), P_CHAIN[j], n_min, biases))
    return specs


def chain_counts(mode: str, seed: int, rows: int = CHAIN_ROWS) -> dict:
    """Counts per (d, j, 'outcome' | 'tokens') from one ragged batch."""
    num_draft, num_accepted, tokens = chain_draws(mode, seed, rows)
    counts = {}
    for d in range(K + 1):
        for j in range(d + 1):
            at = (num_draft == d) & (num_accepted >= j)
            tok = tokens[at, j]
            counts[d, j, "tokens"] = torch.bincount(tok, minlength=V)
            if j < d:  # row 0: draft j accepted; row 1: rejected, tok is the correction
                cell = torch.where(num_accepted[at] > j, 0, 1) * V + tok
                counts[d, j, "outcome"] = torch.bincount(cell, minlength=2 * V)
    return counts


def chain_results(mode: str, seed: int, rows: int = CHAIN_ROWS) -> tuple[list[Spec], list[Result]]:
    specs = chain_specs(mode, rows)
    return specs, results(specs, chain_counts(mode, seed, rows))


@pytest.mark.parametrize("mode", ["sampled", "one-hot"])
def test_chain_ragged_batches_per_position_drafts_match_target(mode):
    assert_results(*chain_results(mode, seed=0))
    num_draft, num_accepted, _ = chain_draws(mode, seed=0, rows=1000)
    assert bool((num_accepted <= num_draft).all())
    full = num_accepted == num_draft
    assert 0.1 < float(full[num_draft > 0].float().mean()) < 0.9  # ragged acceptance: full and partial


# ---------------------------------------------------------------------------------------------
# Tree verification: 3x2 (nodes 0, 1 under the root; 2, 3 under node 0; 4, 5 under node 1).

TREE = parse_tree("3x2")
PARENTS = TREE.parents.tolist()
KIDS = children_lists(PARENTS)
LEAF_ROWS = torch.tensor([  # rows of the leaves 2..5, far from their parents' rows and from each other
    [0.05, 0.05, 0.10, 0.10, 0.10, 0.60],
    [0.55, 0.05, 0.05, 0.05, 0.25, 0.05],
    [0.10, 0.50, 0.05, 0.25, 0.05, 0.05],
    [0.05, 0.10, 0.55, 0.05, 0.05, 0.20],
], dtype=torch.float64)


@dataclass(frozen=True)
class TreeScenario:
    """Target rows of the root and nodes 0..5; each parent's children: fixed tokens, or q to draw them from."""

    name: str
    rows: torch.Tensor  # [7, V]: row 0 the root, row j + 1 node j
    fixed: dict | None  # parent -> its children's tokens (deterministic drafts)
    q: dict | None  # parent -> q its children are drawn from (i.i.d., with replacement)
    steps: int

    def table(self, node: int, bias: float = 1.0) -> torch.Tensor:
        kids = KIDS[node]
        if not kids:
            return self.rows[node + 1][None, :]
        if self.q is None:
            return node_table(self.rows[node + 1], self.fixed[node], bias=bias)
        return node_table(self.rows[node + 1], len(kids), self.q[node], bias=bias)

    def reach(self, node: int) -> float:
        if node < 0:
            return 1.0
        parent = PARENTS[node]
        return self.reach(parent) * float(self.table(parent)[KIDS[parent].index(node)].sum())


# Deterministic children (a greedy tree drafts each node's top-2): the top two tokens of every internal row
# carry 0.50 and 0.47, so both siblings are reached and a 5 % bias moves the outcome by chi-square distance 0.020.
DET = TreeScenario(
    "deterministic",
    torch.cat([torch.tensor([
        [0.50, 0.47, 0.03, 0.00, 0.00, 0.00],
        [0.00, 0.00, 0.50, 0.47, 0.03, 0.00],
        [0.03, 0.00, 0.00, 0.00, 0.47, 0.50],
    ], dtype=torch.float64), LEAF_ROWS]),
    fixed={-1: [0, 1], 0: [2, 3], 1: [5, 4]}, q=None, steps=10_000,
)
# Sampled children. FOCUS is a node whose own children a 5 % bias moves most while both stay reachable
# (chi-square distance 0.0094; first child accepted 89 %, second 3.3 %); SPLIT is a root whose second
# child is accepted 25 % of the time (the most i.i.d. siblings allow), feeding node 1.
FOCUS_P = torch.tensor([0.06, 0.27, 0.16, 0.16, 0.32, 0.03], dtype=torch.float64)
FOCUS_Q = torch.tensor([0.05, 0.29, 0.20, 0.21, 0.25, 0.00], dtype=torch.float64)
SPLIT_P = torch.tensor([0.00, 0.09, 0.09, 0.06, 0.76, 0.00], dtype=torch.float64)
SPLIT_Q = torch.tensor([0.00, 0.00, 0.00, 0.00, 0.48, 0.52], dtype=torch.float64)
FOCUS_P2 = FOCUS_P[[4, 5, 0, 1, 2, 3]]  # the same design on other tokens, so rows of different nodes differ
FOCUS_Q2 = FOCUS_Q[[4, 5, 0, 1, 2, 3]]
SAMPLED_FIRST = TreeScenario(
    "sampled, root and first child", torch.cat([torch.stack([FOCUS_P, FOCUS_P2, FOCUS_P2[[1, 0, 3, 2, 5, 4]]]), LEAF_ROWS]),
    fixed=None, q={-1: FOCUS_Q, 0: FOCUS_Q2, 1: FOCUS_Q2[[1, 0, 3, 2, 5, 4]]}, steps=10_000,
)
SAMPLED_SECOND = TreeScenario(
    "sampled, second child", torch.cat([torch.stack([SPLIT_P, FOCUS_P2[[1, 0, 3, 2, 5, 4]], FOCUS_P2]), LEAF_ROWS]),
    fixed=None, q={-1: SPLIT_Q, 0: FOCUS_Q2[[1, 0, 3, 2, 5, 4]], 1: FOCUS_Q2}, steps=34_000,
)
SCENARIOS = {s.name: s for s in (DET, SAMPLED_FIRST, SAMPLED_SECOND)}


def tree_counts(scenario: TreeScenario, seed: int, steps: int | None = None) -> dict:
    """Run the tree verifier; per node (-1 = the root) the flattened counts of (child accepted or bonus, token)."""
    gen = torch.Generator().manual_seed(seed)
    steps = steps or scenario.steps
    rows = scenario.rows.float()
    counts = {node: np.zeros((len(KIDS[node]) + 1) * V, dtype=np.int64) for node in range(-1, TREE.num_nodes)}
    if scenario.q is None:
        q_rows, drafts = None, [[scenario.fixed[p][KIDS[p].index(j)] for j, p in enumerate(PARENTS)]] * steps
    else:  # every node's draft drawn from its parent's q, all steps at once: [steps, nodes]
        q_rows = torch.stack([scenario.q[p] for p in PARENTS]).float()
        drafts = torch.multinomial(q_rows, steps, replacement=True, generator=gen).t().tolist()
    for step in range(steps):
        path, tokens = verify_tree_rejection(rows, drafts[step], PARENTS, q_rows, gen)
        node = -1
        for i, token in enumerate(tokens):
            child = path[i] if i < len(path) else None
            index = len(KIDS[node]) if child is None else KIDS[node].index(child)
            counts[node][index * V + token] += 1
            node = child if child is not None else node
    out = {}
    for node, observed in counts.items():
        out[node, "outcome"] = torch.from_numpy(observed)
        out[node, "tokens"] = torch.from_numpy(observed.reshape(-1, V).sum(0))
    return out


def tree_specs(scenario: TreeScenario, steps: int | None = None) -> list[Spec]:
    steps = steps or scenario.steps
    specs = []
    for node in range(-1, TREE.num_nodes):
        table = scenario.table(node)
        n_min = guaranteed(steps * scenario.reach(node))
        name = f"tree {scenario.name} node {node}"
        if KIDS[node]:
            biased = scenario.table(node, BIAS).flatten()
            specs.append(Spec(f"{name} outcome", (node, "outcome"), table.flatten(), n_min, [(f"acceptance x{BIAS}", biased)]))
            specs.append(Spec(f"{name} tokens", (node, "tokens"), table.sum(0), n_min, []))
        else:  # a leaf: the bonus after a path accepted to its end
            parent_row = scenario.rows[PARENTS[node] + 1]
            specs.append(Spec(f"{name} leaf bonus", (node, "tokens"), table[0], n_min, [("bonus from the parent's row", parent_row)]))
    return specs


def tree_results(name: str, seed: int, steps: int | None = None) -> tuple[list[Spec], list[Result]]:
    scenario = SCENARIOS[name]
    specs = tree_specs(scenario, steps)
    return specs, results(specs, tree_counts(scenario, seed, steps))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_tree_every_node_and_leaf_bonus_match_target(name):
    assert_results(*tree_results(name, seed=0))


# ---------------------------------------------------------------------------------------------
# The reference and the power statements.


def all_designs():
    """(name, exact table, target row) of every node design above."""
    for j in range(K):
        for mode in ("sampled", "one-hot"):
            yield f"chain {mode} j={j}", chain_table(j, mode), P_CHAIN[j]
    for s in SCENARIOS.values():
        for node in range(-1, TREE.num_nodes):
            yield f"{s.name} node {node}", s.table(node), s.rows[node + 1]


def test_reference_table_marginal_is_the_target():
    """The theorem the sampler rests on, for every design used here: accepted + bonus tokens are distributed as p;
    and the biased variant really is biased (so the power statements are about a real distortion)."""
    for name, table, p in all_designs():
        assert torch.allclose(table.sum(0), p / p.sum(), atol=1e-12), name
    assert not torch.allclose(chain_table(0, "sampled", BIAS).sum(0), P_CHAIN[0], atol=1e-4)


def all_specs() -> list[Spec]:
    specs = chain_specs("sampled") + chain_specs("one-hot")
    for scenario in SCENARIOS.values():
        specs += tree_specs(scenario)
    return specs


def test_every_check_has_power():
    """Stated power >= 0.99 for every bias a check states (the chain: every check; the tree: every node in each
    mode, internal nodes against the 5 % acceptance bias in at least one scenario of that mode)."""
    best = {}
    for spec in all_specs():
        for label, p in spec.powers():
            if spec.name.startswith("chain"):
                assert p >= MIN_POWER, (spec.name, spec.n_min, label, p)
                continue
            mode = "deterministic" if DET.name in spec.name else "sampled"
            node = spec.name.split(" node ")[1].split()[0]
            best[mode, node] = max(best.get((mode, node), 0.0), p)
    assert len(best) == 2 * (TREE.num_nodes + 1)
    for (mode, node), p in best.items():
        assert p >= MIN_POWER, (mode, node, p)
