"""Pricing a tree proposer (`<proposer>@tree:<shape>`, `specscope/tree_spec.py`) against chains.

A trace records, per position, the acc_len a tree shape achieves (`formats/trace.py`); the replays
treat that key as one more proposer whose steps commit min(acc_len, k + 1) tokens. What differs is
the price of a step that drafts from it:

- verification: the k + 1 tokens a step verifies per sequence are the tree's N nodes + the root under
  the `tree` policy (`policy/fixed.py`), as for a chain of k = N: T(N, KV) counts tokens, whatever
  their shape. That is the study's point: a tree's extra tokens are nearly free while the target step
  is memory-bound (small batches) and cost full price once it is compute-bound (large batches);
- drafting: a cost model may price the tree key itself (a `[draft."eagle3@tree:3x2"]` table, e.g. fitted
  from a profile of the tree drafter); otherwise the proposer's own draft form is used with the tree's
  drafting work per sequence in that form's unit, `draft_tokens` = 1 + the nodes whose children are
  drafted (for a chain of k that is k + 1, the unit the form was fitted in). The oracle over a tree
  proposer verifies only the accepted path but pays the same drafting: it picks perfectly among what
  the tree drafter grew.

Chains are priced exactly as before: these helpers return the chain's own values for them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from specscope.costs.model import CostModel
from specscope.tree_spec import split_tree_key


@lru_cache(maxsize=None)
def tree_shape(name: str):
    """The tree spec of a tree proposer's name, None for a chain proposer."""
    return split_tree_key(name)[1]


def draft_form(costs: CostModel, name: str):
    """The draft cost form of proposer `name`: its own table, or for a tree key without one its proposer's."""
    if tree_shape(name) is None or name in costs.drafts:
        return costs.draft(name)
    return costs.draft(split_tree_key(name)[0])


def drafted_tokens(name: str, k: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Per step, the tokens the draft form prices: the step's input length (a chain), or the tree's drafting work
    where it drafted (module docstring)."""
    shape = tree_shape(name)
    if shape is None:
        return inputs
    return np.where(k > 0, shape.draft_tokens, inputs)
