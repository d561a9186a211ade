"""Verification of draft tokens: greedy matching and rejection sampling, for chains and (below) draft trees.

Terms (the glossary of docs/design.md). A step proposes up to k **draft tokens** per sequence; the target scores
the sequence's last committed token plus its drafts in one forward pass, giving k + 1 target
distributions (row j predicts the token after draft j; row 0 the token after the committed context).
Verification keeps the longest acceptable prefix of the draft — the **accepted tokens** — and then
adds one token chosen by the target, the **bonus token**: the correction drawn at the first rejected
position, or an extra token from the last row when every draft was accepted. The step commits
accepted + 1 tokens (its **acceptance length**).

Batch layout: drafts are right-padded to the longest draft in the batch, K = max(num_draft); a
sequence without a draft (num_draft = 0, e.g. a prefill or an n-gram miss) is a plain decode step.
Both verifiers return `(num_accepted [B], tokens [B, K + 1])`: row b commits `tokens[b, :num_accepted[b] + 1]`.

Rejection sampling (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
Decoding", Algorithm 1; Chen et al. 2023): accept draft x with probability min(1, p(x)/q(x)); on the
first rejection draw the bonus from normalize(max(p - q, 0)); after a full acceptance draw it from p.
The committed tokens are then distributed exactly as samples from p. A deterministic proposer
(n-gram lookup, greedy draft model) has a one-hot q: accept x with probability p(x), and the residual
is p with x removed.
"""

from __future__ import annotations

import torch


# draft_ids: [B, K] padded; num_draft: [B]
def draft_mask(draft_ids: torch.Tensor, num_draft: torch.Tensor) -> torch.Tensor:
    """[B, K] True where a draft position holds a real token."""
    positions = torch.arange(draft_ids.shape[1], device=draft_ids.device)
    return positions[None, :] < num_draft[:, None]


# accept: [B, K] bool, already False at padding
def accepted_prefix(accept: torch.Tensor) -> torch.Tensor:
    """Length of the all-True prefix of each row. Returns [B] int64."""
    return accept.long().cumprod(dim=1).sum(dim=1)


# target_ids: [B, K + 1] the target's argmax at each scored row
# draft_ids:  [B, K]     right-padded drafts
# num_draft:  [B]
def verify_greedy(target_ids: torch.Tensor, draft_ids: torch.Tensor, num_draft: torch.Tensor):
    """Greedy verification: accept the longest prefix where the draft equals the target's argmax.

    The committed tokens are the target's own argmax tokens (the accepted drafts equal them), so the
    result is exactly plain greedy decoding.
    Example: target [7, 8, 9, 4], draft [7, 8, 5] -> 2 accepted, commits [7, 8, 9] (9 is the bonus).
    """
    accept = (draft_ids == target_ids[:, :-1]) & draft_mask(draft_ids, num_draft)
    return accepted_prefix(accept), target_ids


# target_probs: [B, K + 1, V] target distribution p at each scored row (rows past num_draft unused)
# draft_ids:    [B, K]
# num_draft:    [B]
# draft_probs:  [B, K, V] proposal distribution q, or None for a deterministic (one-hot) proposer
def verify_rejection(
    target_probs: torch.Tensor,
    draft_ids: torch.Tensor,
    num_draft: torch.Tensor,
    draft_probs: torch.Tensor | None,
    generator: torch.Generator | None,
):
    """Rejection-sampling verification; the committed tokens are distributed as samples from p."""
    B, K = draft_ids.shape
    valid = draft_mask(draft_ids, num_draft)
    p_of_draft = target_probs[:, :K].gather(-1, draft_ids[..., None]).squeeze(-1)  # [B, K]
    if draft_probs is None:
        q_of_draft = torch.ones_like(p_of_draft)
    else:
        q_of_draft = draft_probs.gather(-1, draft_ids[..., None]).squeeze(-1)
    u = torch.rand(B, K, generator=generator, device=target_probs.device)
    accept = (u * q_of_draft < p_of_draft) & valid  # u < p/q without dividing by q
    num_accepted = accepted_prefix(accept)

    rows = torch.arange(B, device=target_probs.device)
    p_next = target_probs[rows, num_accepted]  # [B, V] target row after the accepted prefix
    rejected = num_accepted < num_draft  # [B] the bonus is a correction, not an extra token
    at = num_accepted.clamp(max=max(K - 1, 0))
    if K == 0:
        q_next = torch.zeros_like(p_next)
    elif draft_probs is None:
        q_next = torch.zeros_like(p_next).scatter_(-1, draft_ids[rows, at][:, None], 1.0)
    else:
        q_next = draft_probs[rows, at]
    residual = (p_next - q_next * rejected[:, None].to(p_next.dtype)).clamp(min=0.0)
    mass = residual.sum(dim=-1, keepdim=True)
    # p == q on the support can leave no residual mass (only by rounding): fall back to p.
    residual = torch.where(mass > 0, residual / mass.clamp(min=1e-30), p_next)
    bonus = torch.multinomial(residual, 1, generator=generator).squeeze(-1)  # [B]

    tokens = torch.cat([draft_ids, draft_ids.new_zeros(B, 1)], dim=1)
    tokens[rows, num_accepted] = bonus
    return num_accepted, tokens


# ---------------------------------------------------------------------------------------------
# Tree verification. A step's drafts form a tree (`tree.py`): draft j hangs under draft parents[j],
# or under the root (the last committed token) when parents[j] = -1. Row 0 of the target's output
# scores the root, row j + 1 scores draft j. Verification walks down from the root, accepting at most
# one child per node, and keeps the longest accepted root-to-leaf path plus the bonus token.
# Both verifiers take one sequence and return (path, tokens): the accepted draft nodes, root to leaf,
# and the committed tokens (the accepted drafts, then the bonus).


# target_ids: [n + 1] target argmax per row; draft_ids, parents: [n]
def verify_tree_greedy(target_ids, draft_ids, parents):
    """Greedy tree walk: at each node accept the child whose token is the target's argmax there.

    Example: root children [5, 7], 7's children [8, 9]; target argmax root 7, at '7' 9, at '9' 4
    -> path = the nodes '7', '9'; tokens [7, 9, 4] (4 is the bonus).
    """
    from specscope.engine.tree import children_lists

    target_ids = [int(t) for t in target_ids]
    kids, cur, path = children_lists(parents), -1, []
    while True:
        want = target_ids[cur + 1]
        nxt = next((j for j in kids[cur] if int(draft_ids[j]) == want), None)
        if nxt is None:
            break
        path.append(nxt)
        cur = nxt
    return path, [int(draft_ids[j]) for j in path] + [target_ids[cur + 1]]


# target_probs: [n + 1, V] target distribution p per row; draft_ids, parents: [n]
# draft_probs: [n, V] the distribution q each draft was drawn from (siblings drawn i.i.d. share one q),
#              or None for deterministic drafts (each sibling a distinct token, q one-hot)
def verify_tree_rejection(target_probs, draft_ids, parents, draft_probs, generator):
    """Multi-draft recursive rejection sampling (SpecInfer, Miao et al. 2024; Chen et al. 2023).

    At a node with target distribution p, try its children in order: accept child x with probability
    min(1, p(x)/q(x)) and descend into it; on a rejection replace p by normalize(max(p - q, 0)) and try
    the next sibling. When every child is rejected (or the node is a leaf) draw the bonus from the
    current p. Each committed token is then distributed exactly as a sample from the target's p.
    """
    from specscope.engine.tree import children_lists

    kids, cur, path = children_lists(parents), -1, []
    device = target_probs.device
    while True:
        p, chosen = target_probs[cur + 1], None
        for j in kids[cur]:
            x = int(draft_ids[j])
            q = None if draft_probs is None else draft_probs[j]
            q_x = 1.0 if q is None else float(q[x])
            u = float(torch.rand((), generator=generator, device=device))
            if u * q_x < float(p[x]):
                chosen = j
                break
            if q is None:
                residual = p.clone()
                residual[x] = 0.0
            else:
                residual = (p - q).clamp(min=0.0)
            mass = residual.sum()
            p = residual / mass if float(mass) > 0 else p  # no mass left only by rounding: keep p
        if chosen is None:
            break
        path.append(chosen)
        cur = chosen
    bonus = int(torch.multinomial(p, 1, generator=generator))
    return path, [int(draft_ids[j]) for j in path] + [bonus]
