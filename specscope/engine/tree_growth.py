"""Growing a draft tree level by level from a drafter's top-k: the static and dynamic shapes of `tree_spec.py`.

    tokens, parents = grow_tree(spec, root_logits, expand, vocab_ids)   # [R, N] each, one tree per row

`root_logits` [R, V] are the drafter's logits after each row's last committed token (the root).
`expand(frontier)` runs the drafter on the frontier's nodes — each fed after its ancestors, a tree
attention mask over the drafter's own draft positions — and returns their logits [R, F, V]: the
drafter-specific part (an EAGLE head, MTP heads, a draft model). Everything else is here:

- static `DxB`: every node of levels 1 .. D-2 is expanded with its B most probable children;
- dynamic `dynamic:N:DxK` (EAGLE-2, Li et al. 2024, "EAGLE-2: Faster Inference of Language Models with
  Dynamic Draft Trees"; SGLang's default for EAGLE heads): each frontier node gets its K most probable
  children; the next frontier is the K new nodes of highest cumulative log-probability (the sum of
  log q along the path); after D - 1 levels the N candidates of highest cumulative log-probability
  are kept (ties: the earlier-drafted node first, so a kept node's parent is always kept).

Probabilities are the drafter's softmax at temperature 1 (its own confidence), whatever the run's
sampling temperature: the tree is a deterministic function of the drafter's distributions given the
context, and its children are distinct tokens. That is what `verify.verify_tree_rejection` assumes
of drafts passed without `draft_probs` (q one-hot per child, siblings tried against the residual), so
recursive rejection sampling over these trees reproduces the target distribution exactly (argument in
`verify.py`); greedy verification needs nothing of the drafts.

Output order: kept nodes in the order they were drafted (level by level), so parents[j] < j and every
prefix of a tree is a tree (a row asked for fewer drafts keeps the first ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class Frontier:
    """The nodes to expand at one level, the same count F for every row."""

    tokens: torch.Tensor  # [R, F] target ids
    depth: int  # their depth (1 = children of the root)
    parent: torch.Tensor  # [R, F] index of each node's parent in the previous frontier (0 at depth 1: the root)
    fed: int  # nodes expanded before this level (per row); this level's node j is expanded as number fed + j
    ancestors: torch.Tensor  # [R, F, fed] bool: which earlier-expanded nodes are its ancestors (the root excluded)
    fed_tokens: torch.Tensor  # [R, fed] target ids of the earlier-expanded nodes
    fed_parents: torch.Tensor  # [R, fed] expansion number of each earlier-expanded node's parent (-1: the root)

    @property
    def parent_fed(self) -> torch.Tensor:
        """[R, F] expansion number of each node's parent (-1: the root)."""
        if self.fed == 0:
            return torch.full(self.tokens.shape, -1, dtype=torch.long, device=self.tokens.device)
        order = torch.arange(1, self.fed + 1, device=self.tokens.device)
        return (self.ancestors.long() * order).amax(dim=-1) - 1  # the parent is the ancestor expanded last


Expand = Callable[[Frontier], torch.Tensor]


def grow_tree(spec, root_logits: torch.Tensor, expand: Expand, vocab_ids: torch.Tensor | None = None):
    """Grow one tree per row (module docstring); returns (tokens [R, N] target ids, parents [R, N], -1 = the root).

    `vocab_ids` maps the drafter's vocabulary to target ids (a reduced draft vocabulary); None: the same ids.
    """
    device = root_logits.device
    R = root_logits.shape[0]
    width = spec.topk if spec.dynamic else spec.branching
    logp = torch.log_softmax(root_logits.float(), dim=-1)
    k = min(width, logp.shape[-1])
    score, idx = logp.topk(k, dim=-1)  # [R, k], most probable first
    tokens = [_target_ids(idx, vocab_ids)]
    scores, parents = [score], [torch.full((R, k), -1, dtype=torch.long, device=device)]  # parent: candidate index
    frontier = torch.arange(k, device=device).expand(R, k)  # candidate index of each frontier node
    expanded_cand = torch.zeros(R, 0, dtype=torch.long, device=device)  # candidate index of each expanded node
    cand_anc = torch.zeros(R, k, 0, dtype=torch.bool, device=device)  # [R, C, fed] expanded ancestors per candidate
    count, previous = k, None  # candidates so far; the previous frontier (None: the root)
    for depth in range(1, spec.depth - 1):  # expand levels 1 .. D-2; their children are levels 2 .. D-1
        all_tokens, all_parents = torch.cat(tokens, dim=1), torch.cat(parents, dim=1)
        fed = expanded_cand.shape[1]
        parent = (torch.zeros_like(frontier) if previous is None
                  else _position_in(all_parents.gather(1, frontier), previous))
        level = Frontier(tokens=all_tokens.gather(1, frontier), depth=depth, parent=parent, fed=fed,
                         ancestors=cand_anc.gather(1, frontier[:, :, None].expand(R, frontier.shape[1], fed)),
                         fed_tokens=all_tokens.gather(1, expanded_cand),
                         fed_parents=_position_in(all_parents.gather(1, expanded_cand), expanded_cand))
        logits = expand(level)  # [R, F, V]
        F = frontier.shape[1]
        child_logp = torch.log_softmax(logits.float(), dim=-1)
        k = min(width, child_logp.shape[-1])
        lp, idx = child_logp.topk(k, dim=-1)  # [R, F, k]
        parent_score = torch.cat(scores, dim=1).gather(1, frontier)  # [R, F]
        new_scores = (parent_score[:, :, None] + lp).reshape(R, F * k) if spec.dynamic else lp.reshape(R, F * k)
        new_parents = frontier[:, :, None].expand(R, F, k).reshape(R, F * k)
        # ancestors of the new nodes: their parent's, plus the parent itself (expanded as number fed + f)
        own = torch.zeros(R, F, fed + F, dtype=torch.bool, device=device)
        own[:, :, :fed] = level.ancestors
        own[:, torch.arange(F), fed + torch.arange(F)] = True
        new_anc = own[:, :, None, :].expand(R, F, k, fed + F).reshape(R, F * k, fed + F)
        cand_anc = torch.cat((torch.cat((cand_anc, cand_anc.new_zeros(R, count, F)), dim=2), new_anc), dim=1)
        expanded_cand, previous = torch.cat((expanded_cand, frontier), dim=1), frontier
        tokens.append(_target_ids(idx.reshape(R, F * k), vocab_ids))
        scores.append(new_scores)
        parents.append(new_parents)
        new = torch.arange(count, count + F * k, device=device)
        count += F * k
        if spec.dynamic:  # the next frontier: the K new nodes of highest cumulative log-probability
            top = new_scores.topk(min(spec.topk, F * k), dim=-1).indices
            frontier = new[top]
        else:
            frontier = new.expand(R, F * k)
    all_tokens, all_scores, all_parents = torch.cat(tokens, 1), torch.cat(scores, 1), torch.cat(parents, 1)
    if not spec.dynamic:
        return all_tokens, all_parents
    keep = min(spec.nodes, count)
    order = torch.sort(-all_scores, dim=1, stable=True).indices[:, :keep]  # ties: the earlier candidate first
    kept = torch.sort(order, dim=1).values  # back to drafting order: parents before children
    position = torch.full((R, count), -1, dtype=torch.long, device=device)
    position.scatter_(1, kept, torch.arange(keep, device=device).expand(R, keep))
    parent = all_parents.gather(1, kept)
    tree_parents = torch.where(parent < 0, parent, position.gather(1, parent.clamp(min=0)))
    return all_tokens.gather(1, kept), tree_parents


def _target_ids(idx: torch.Tensor, vocab_ids: torch.Tensor | None) -> torch.Tensor:
    return idx if vocab_ids is None else vocab_ids[idx]


def _position_in(values: torch.Tensor, within: torch.Tensor) -> torch.Tensor:
    """Per row, the index in `within` [R, n] of each of `values` [R, m] (every value occurs; -1 stays -1)."""
    if within.shape[1] == 0:
        return values
    match = values[:, :, None] == within[:, None, :]
    pos = match.long().argmax(dim=-1)
    return torch.where(values < 0, values, pos)

