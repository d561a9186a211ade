"""Prompt-lookup (n-gram) proposer: copy what followed the last n tokens the previous time they occurred.

The pure matcher `ngram_match` (`specscope/ngram.py`, torch-free: the simulator uses it too) works on
one context held as a numpy array; `NgramProposer` applies it to each sequence of a step. No model
runs, so drafts are deterministic (q is one-hot). No match: no draft (a plain decode step).
"""

from __future__ import annotations

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.ngram import NAME, ngram_match

__all__ = ["NgramProposer", "ngram_match"]


class NgramProposer(Proposer):
    """Prompt lookup over prompt + output so far (`--ngram-min`, `--ngram-max`)."""

    name = NAME
    drafts_are_free_prefixes = True  # the match does not depend on k: k drafts are the first k of more

    def __init__(self, settings, target=None, tokenizer=None):
        super().__init__(settings)
        self.n_min, self.n_max = settings.proposer.ngram_min, settings.proposer.ngram_max

    def propose(self, batch: ProposerInput) -> Proposal:
        drafts = [ngram_match(ctx, self.n_min, self.n_max, k) for ctx, k in zip(batch.contexts, batch.max_draft)]
        return Proposal.from_lists(drafts)

