"""Proposer registry: `--method NAME` picks a class from `PROPOSERS`; shared code never branches on the name.

Add a proposer by writing one module with a `Proposer` subclass (see `base.py`) and listing it here.
"""

from __future__ import annotations

from specscope.engine.proposers.base import Proposal, Proposer, ProposerInput
from specscope.engine.proposers.draft import DraftModelProposer
from specscope.engine.proposers.eagle import Eagle3Proposer, EagleProposer
from specscope.engine.proposers.mtp import MtpProposer
from specscope.engine.proposers.ngram import NgramProposer
from specscope.engine.proposers.none import NoProposer
from specscope.errors import unknown_name
from specscope.settings import RunSettings

PROPOSERS: dict[str, type[Proposer]] = {
    NoProposer.name: NoProposer,
    NgramProposer.name: NgramProposer,
    DraftModelProposer.name: DraftModelProposer,
    EagleProposer.name: EagleProposer,
    Eagle3Proposer.name: Eagle3Proposer,
    MtpProposer.name: MtpProposer,
}


def build_proposer(name: str, settings: RunSettings, target=None, tokenizer=None) -> Proposer:
    """The proposer registered as `name`, built from the run's settings, or a one-line error listing the names."""
    if name not in PROPOSERS:
        raise unknown_name("method", name, PROPOSERS)
    return PROPOSERS[name](settings, target=target, tokenizer=tokenizer)


__all__ = ["PROPOSERS", "Proposal", "Proposer", "ProposerInput", "build_proposer"]
