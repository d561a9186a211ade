"""Goodness-of-fit helpers for the distribution tests: Pearson's chi-square, its critical value and power.

The distribution tests compare token counts with an exact target distribution. `chi2_test` pools
cells whose expected count is small (so the chi-square approximation holds), requires a zero count
where the target has zero probability, and returns the statistic with its critical value at level
`ALPHA`. `power` is the probability that the same test rejects when the tokens really come from a
biased distribution f (noncentral chi-square with noncentrality n * sum((f - p)^2 / p) over the same
pooled cells), so every test can say how large a bias its sample size catches.

ALPHA is 1e-6 per check: a file with 50 checks run over 20 seeds (1,000 checks) flakes with
probability < 0.001 on correct code. No scipy needed: torch.special.gammaincc gives the chi-square
tail.

    stat, crit = chi2_test(counts, probs)          # assert stat < crit
    chi2_tail(stat, df)                            # its p-value (chi2_detail gives df)
    power(n, probs, biased)                        # P(stat >= crit) when tokens ~ biased
"""

from __future__ import annotations

import math

import torch

ALPHA = 1e-6
MIN_EXPECTED = 5.0


def chi2_tail(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with df degrees of freedom."""
    return float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64), torch.tensor(x / 2, dtype=torch.float64)))


def chi2_critical(df: int, alpha: float = ALPHA) -> float:
    """The x with P(chi-square_df >= x) = alpha (bisection on the tail)."""
    lo, hi = 0.0, float(df) + 10.0
    while chi2_tail(hi, df) > alpha:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_tail(mid, df) > alpha else (lo, mid)
    return hi


def pooled_cells(n: int, probs: torch.Tensor) -> list[torch.Tensor]:
    """Groups of token ids whose expected counts n * p are each >= MIN_EXPECTED: every token with enough
    mass is a cell of its own, the rest are pooled (the pool joins the smallest cell when still too small)."""
    probs = probs.double()
    support = (probs > 0).nonzero().squeeze(1)
    big = [t for t in support.tolist() if n * float(probs[t]) >= MIN_EXPECTED]
    small = [t for t in support.tolist() if n * float(probs[t]) < MIN_EXPECTED]
    cells = [[t] for t in big]
    if small:
        if n * float(probs[small].sum()) >= MIN_EXPECTED or not cells:
            cells.append(small)
        else:
            smallest = min(range(len(cells)), key=lambda i: float(probs[cells[i]].sum()))
            cells[smallest] = cells[smallest] + small
    return [torch.tensor(c) for c in cells]


# counts: [V] observed tokens; probs: [V] the exact distribution they should follow
def chi2_detail(counts: torch.Tensor, probs: torch.Tensor, alpha: float = ALPHA) -> tuple[float, int, float]:
    """(statistic, degrees of freedom, critical value) of Pearson's test on pooled cells; a count where p = 0
    gives an infinite statistic."""
    counts, probs = counts.double(), probs.double()
    probs = probs / probs.sum()
    n = int(counts.sum())
    if bool((counts[probs == 0] > 0).any()):
        return math.inf, 1, chi2_critical(1, alpha)
    cells = pooled_cells(n, probs)
    if len(cells) < 2:
        return 0.0, 1, chi2_critical(1, alpha)
    obs = torch.stack([counts[c].sum() for c in cells])
    exp = torch.stack([probs[c].sum() for c in cells]) * n
    df = len(cells) - 1
    return float(((obs - exp) ** 2 / exp).sum()), df, chi2_critical(df, alpha)


def chi2_test(counts: torch.Tensor, probs: torch.Tensor, alpha: float = ALPHA) -> tuple[float, float]:
    """(statistic, critical value): the check passes when statistic < critical value."""
    stat, _, crit = chi2_detail(counts, probs, alpha)
    return stat, crit


def token_counts(tokens, vocab: int) -> torch.Tensor:
    return torch.bincount(torch.as_tensor(tokens, dtype=torch.long).reshape(-1), minlength=vocab)


def noncentrality(n: int, probs: torch.Tensor, biased: torch.Tensor) -> tuple[float, int]:
    """(lambda, df) of the pooled test on n tokens drawn from `biased` instead of `probs`."""
    probs, biased = probs.double() / probs.sum(), biased.double() / biased.sum()
    if float(biased[probs == 0].sum()) > 1e-12:
        return math.inf, 1
    cells = pooled_cells(n, probs)
    p = torch.stack([probs[c].sum() for c in cells])
    f = torch.stack([biased[c].sum() for c in cells])
    return float(n * ((f - p) ** 2 / p).sum()), len(cells) - 1


def noncentral_tail(lam: float, df: int, x: float) -> float:
    """P(X >= x) for X ~ noncentral chi-square(df, lam): a Poisson(lam / 2) mixture of central tails (the
    terms within 12 sd of the Poisson mean; the weight outside is below 1e-30)."""
    half = lam / 2
    if half <= 0:
        return chi2_tail(x, df)
    spread = 12 * math.sqrt(half) + 12
    j = torch.arange(max(0, int(half - spread)), int(half + spread) + 1, dtype=torch.float64)
    log_weight = -half + j * math.log(half) - torch.lgamma(j + 1)
    tails = torch.special.gammaincc((df + 2 * j) / 2, torch.full_like(j, x / 2))
    return min(1.0, float((torch.exp(log_weight) * tails).sum()))


def power(n: int, probs: torch.Tensor, biased: torch.Tensor, alpha: float = ALPHA) -> float:
    """P(the pooled test on n tokens rejects) when they come from `biased` instead of `probs`."""
    lam, df = noncentrality(n, probs, biased)
    if math.isinf(lam):
        return 1.0
    return noncentral_tail(lam, df, chi2_critical(df, alpha))


def detectable_distance(n: int, df: int, target: float = 0.99, alpha: float = ALPHA) -> float:
    """The smallest chi-square distance sum((f - p)^2 / p) that a test on n tokens with df degrees of freedom
    rejects with probability `target`: every bias at least this large is caught that often."""
    crit = chi2_critical(df, alpha)
    lo, hi = 0.0, 10.0 * crit + 100.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if noncentral_tail(mid, df, crit) < target else (lo, mid)
    return hi / n
