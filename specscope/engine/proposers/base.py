"""The one small interface every proposer implements, and the data it exchanges with the engine.

A proposer only proposes: given each running sequence's token context it returns draft token ids
(and, when it samples, the distribution q it sampled them from). Verification happens elsewhere
(`verify.py`), as in vLLM v1 where proposers return draft ids and one rejection sampler verifies.

Lifecycle: `bind(num_slots, max_len)` once, when the engine knows its batch size; `reset(slot)`
when a new sequence takes a slot; `propose(batch)` once per step for the decoding sequences. A
proposer keeps whatever per-slot state it needs (a draft model keeps its own KV cache) and brings it
up to date itself from the contexts it is shown, so the engine never tells it which tokens were
accepted: the context already says so.

Extension points kept open:
- `needs_hidden = True` makes the engine pass the target's last hidden states (`ProposerInput.hidden`)
  for proposers that read them (EAGLE-style heads).
- A proposer with `supports_tree = True` drafts a static tree when the run's `ProposerSettings.tree` is set
  and returns `Proposal.parents` (draft j hangs under draft parents[j], -1 = under the last committed
  token; a chain is parent j - 1). `parents = None` is a chain. See `tree.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import torch

from specscope.settings import RunSettings


@dataclass
class ProposerInput:
    """The sequences to draft for in one step."""

    slots: list[int]  # cache slot of each sequence
    contexts: list[np.ndarray]  # per sequence: prompt + output so far, int64 (a view; do not modify)
    max_draft: list[int]  # per sequence: most draft tokens it may take this step
    generator: torch.Generator | None = None  # for sampling proposers
    hidden: list[torch.Tensor] | None = None  # per sequence [n, hidden]: target's last hidden states, if needs_hidden
    # Set: the proposer reports each draft's confidence (`Proposal.extra["confidence"]`), where it can (the draft
    # model, EAGLE/MTP heads); off by default, as plain runs have no use for it (a softmax over the vocabulary).
    report_confidence: bool = False
    # Chain proposers that report confidences (`reports_confidence`) call it after each draft token with the rows
    # (indices into this batch) that would draft another and their confidences so far [m, j + 1]; it returns
    # bool [m], False ending that row's chain where it is (an in-step stop, `specscope/policy/confidence.py`).
    # Setting it implies report_confidence.
    keep_drafting: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    @property
    def wants_confidence(self) -> bool:
        return self.report_confidence or self.keep_drafting is not None


@dataclass
class Proposal:
    """Drafts for one step, right-padded to the longest one."""

    draft_ids: torch.Tensor  # [B, K] int64, padding 0
    num_draft: torch.Tensor  # [B] int64, real drafts per row (0 = no draft: a plain decode step)
    draft_probs: torch.Tensor | None = None  # [B, K, V] q the drafts were sampled from; None = deterministic
    extra: dict = field(default_factory=dict)  # e.g. "confidence": [B, K] float, P(draft) per draft (when asked)
    parents: torch.Tensor | None = None  # [B, K] int64 tree parent of each draft (-1 = the root); None = chain

    @staticmethod
    def from_lists(drafts: list[np.ndarray], device="cpu") -> "Proposal":
        """Pad variable-length deterministic drafts into a Proposal."""
        num = np.fromiter((len(d) for d in drafts), dtype=np.int64, count=len(drafts))
        K = int(num.max()) if len(drafts) else 0
        padded = np.zeros((len(drafts), K), dtype=np.int64)
        for row, d in enumerate(drafts):
            padded[row, : len(d)] = d
        return Proposal(torch.from_numpy(padded).to(device), torch.from_numpy(num).to(device))


class Proposer:
    """Base class: override `propose`; override `bind`/`reset`/`nbytes` if the proposer holds state."""

    name: ClassVar[str] = ""
    needs_hidden: ClassVar[bool] = False
    supports_tree: ClassVar[bool] = False  # can draft several candidates per position (`--tree`)

    # True when the draft is a pure function of the token context AND drafting after context + [d1]
    # continues the same chain (d2, d3, ...): a greedy draft model. Trace collection may then reuse a
    # chain across positions instead of re-drafting (see `trace.py`). n-gram lookup is a pure
    # function of the context but not shift-consistent (a longer context may match elsewhere).
    shift_consistent: bool = False

    # True when proposing k drafts costs next to nothing and gives the first k of what proposing more would:
    # `--k adaptive` may then draft at its cap first and decide k knowing how many drafts each sequence
    # can get (an n-gram without a match offers none). Not for model drafters (each draft costs a pass).
    drafts_are_free_prefixes: ClassVar[bool] = False

    # True when `propose` drafts a chain token by token, reports each draft's confidence in
    # `Proposal.extra["confidence"]` and honours `ProposerInput.keep_drafting` (the draft model, EAGLE).
    reports_confidence: bool = False

    def __init__(self, settings: RunSettings, target=None, tokenizer=None):
        self.settings = settings  # the run's: sampling (temperature, top_p), device and `settings.proposer`

    @property
    def label(self) -> str:
        """How outputs name this method (e.g. 'ngram', 'draft(self:8)')."""
        return self.name

    def bind(self, num_slots: int, max_len: int) -> None:
        """Allocate per-slot state for up to `num_slots` sequences of `max_len` tokens."""

    def reset(self, slot: int) -> None:
        """A new sequence takes `slot`."""

    def propose(self, batch: ProposerInput) -> Proposal:
        raise NotImplementedError

    def nbytes(self) -> int:
        """Bytes of memory this proposer holds beyond the target (draft weights, caches)."""
        return 0
