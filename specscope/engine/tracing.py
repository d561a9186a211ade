"""Per-position acceptance traces: for every output position, the acc_len each proposer would achieve.

Definition (docs/design.md, glossary): at output position i a step would draft up to k_max tokens from the context
prompt + output[:i], verify them, and commit accepted + 1 tokens; that count is acc_len[i]. Only one
token is ever committed per position, so the output is plain greedy decoding; position 0 (the
prefill token) has acc_len 1 by convention.

How it is computed, exactly and cheaply:
1. The outputs are generated first by the engine with no proposer (plain greedy, batched).
2. Greedy verification accepts draft token j iff it equals the target's argmax after the context and
   drafts 1..j-1 — and while every earlier draft matched, that argmax is the greedy output itself. So
   acc_len[i] = 1 + (longest common prefix of the draft and output[i:]), capped so that a step never
   commits past the end of the output (acc_len[i] <= len(output) - i), as `specscope run` clips at a
   stop token or max_new_tokens. Verification needs no extra target forward.
3. A shift-consistent proposer (a greedy draft model: drafting after context + [d1] continues
   d2, d3, ...) keeps its chain from one position to the next when the committed token equals the
   chain's head, and is asked only for the tokens the value still depends on: once the chain
   disagrees with the output inside its known part, further draft tokens cannot change acc_len. In the
   common case that costs one draft-model token per position instead of k_max. Other proposers (n-gram
   lookup: a longer context may match elsewhere) draft afresh at every position.

A fixed-k greedy `specscope run` with the same proposer therefore accepts min(acc_len[i] - 1, drafts
proposed) at a step starting at position i (tested in tests/engine/test_tracing.py).

Draft confidences: a proposer that reports how sure it was of each draft when asked (`Proposal.extra
["confidence"]`: the draft model and the EAGLE/MTP heads) also gets, per output position i, its
probability for the token it drafts there from the context prompt + output[:i] (the draft that
starts a step at i, or a chain's draft that reaches i while it still follows the output: the same
context, so the same value). Every position a step can draft at gets one; the others (position 0,
the prefill's token, and the last one when no chain reached it) are written as [] (not recorded).

Tree shapes (`tree_acc_lengths`): a proposer built with a tree (`--tree`, `tree_spec.py`) drafts its
whole tree from the context prompt + output[:i] at every position i. Greedy tree verification walks
down from the root taking the child equal to the target's argmax, and along an accepted path that
argmax is the greedy output itself (as for a chain), so acc_len[i] = 1 + the longest root-to-node
path whose tokens are output[i], output[i + 1], ..., capped at len(output) - i. The trace stores it
under the key `<proposer>@tree:<shape>` (`formats/trace.py`). No extra target forward either.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from specscope.engine.engine import Engine
from specscope.engine.proposers.base import Proposer, ProposerInput
from specscope.engine.scheduler import Request, Sequence
from specscope.engine.tree import children_lists
from specscope.settings import RunSettings


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two 1-D arrays."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def acc_lengths(proposer: Proposer, seqs: list[Sequence], k_max: int, features=None,
                confidence: list | None = None) -> list[np.ndarray]:
    """acc_len at every output position of each finished sequence, for one proposer (greedy target).

    `features[r]`: the target's features of every token of sequence r, for proposers that read hidden
    states (`sequence_features`); each call hands over those of the context's tokens but the newest.
    `confidence`: an empty list to fill, per sequence, with the proposer's confidence at every output
    position (module docstring; NaN where it never drafted) if the proposer reports confidences.
    """
    R = len(seqs)
    fulls = [s.context for s in seqs]  # prompt + output
    prompt_lens = [s.prompt_len for s in seqs]
    outputs = [s.output for s in seqs]
    G = [len(o) for o in outputs]
    proposer.bind(R, max(len(f) for f in fulls) + k_max + 1)
    for r in range(R):
        proposer.reset(r)
    acc = [np.ones(g, dtype=np.int64) for g in G]
    sure = [np.full(g, np.nan) for g in G]  # the proposer's confidence per output position
    reported = False
    chains = [np.zeros(0, dtype=np.int64) for _ in range(R)]  # draft beyond the context at position i
    keep_chain = proposer.shift_consistent

    for i in range(1, max(G, default=0)):
        ask, want = [], []
        for r in range(R):
            if i >= G[r]:
                continue
            # Move from position i-1 to i: the committed token is out[i-1].
            chain, out = chains[r], outputs[r]
            chains[r] = chain[1:] if keep_chain and len(chain) and chain[0] == out[i - 1] else chain[:0]
            if _settle(acc[r], i, chains[r], out, min(k_max, G[r] - i - 1)):
                continue
            ask.append(r)
            want.append(_want(len(chains[r]), min(k_max, G[r] - i - 1), keep_chain))
        while ask:  # a shift-consistent chain is extended in rounds; anything else drafts once
            contexts = [fulls[r][: prompt_lens[r] + i + len(chains[r])] for r in ask]
            hidden = None if features is None else [features[r][: len(c) - 1] for r, c in zip(ask, contexts)]
            proposal = proposer.propose(ProposerInput(slots=ask, contexts=contexts, max_draft=want, hidden=hidden,
                                                      report_confidence=confidence is not None))
            num, drafts = proposal.num_draft.tolist(), proposal.draft_ids.cpu().numpy()
            conf = proposal.extra.get("confidence")
            conf = None if conf is None else conf.float().cpu().numpy()
            reported = reported or conf is not None
            again, again_want = [], []
            for row, r in enumerate(ask):
                if conf is not None:  # the new drafts' contexts follow the output up to their first miss
                    at = i + len(chains[r])
                    new = drafts[row, : num[row]]
                    upto = max(0, min(common_prefix(new, outputs[r][at:]) + 1, len(new), G[r] - at))
                    sure[r][at : at + upto] = conf[row, :upto]
                chains[r] = np.concatenate((chains[r], drafts[row, : num[row]]))
                cap = min(k_max, G[r] - i - 1)
                if _settle(acc[r], i, chains[r], outputs[r], cap) or not keep_chain or num[row] == 0:
                    acc[r][i] = 1 + min(common_prefix(chains[r], outputs[r][i:]), cap)
                    continue
                again.append(r)
                again_want.append(_want(len(chains[r]), cap, keep_chain))
            ask, want = again, again_want
    if confidence is not None and reported:
        confidence.extend(sure)
    return acc


def tree_acc_lengths(proposer: Proposer, seqs: list[Sequence], features=None) -> list[np.ndarray]:
    """acc_len at every output position of each finished sequence under the proposer's tree (`proposer.tree`, greedy
    target; module docstring). `features` as for `acc_lengths`."""
    R, tree = len(seqs), proposer.tree
    fulls = [s.context for s in seqs]
    outputs = [s.output for s in seqs]
    prompt_lens = [s.prompt_len for s in seqs]
    G = [len(o) for o in outputs]
    proposer.bind(R, max(len(f) for f in fulls) + tree.num_nodes + 1)
    for r in range(R):
        proposer.reset(r)
    acc = [np.ones(g, dtype=np.int64) for g in G]
    for i in range(1, max(G, default=0)):
        ask = [r for r in range(R) if i < G[r] - 1]  # at the last position a step can only commit its bonus
        if not ask:
            continue
        contexts = [fulls[r][: prompt_lens[r] + i] for r in ask]
        hidden = None if features is None else [features[r][: len(c) - 1] for r, c in zip(ask, contexts)]
        proposal = proposer.propose(ProposerInput(slots=ask, contexts=contexts, max_draft=[tree.num_nodes] * len(ask),
                                                  hidden=hidden))
        num, drafts = proposal.num_draft.tolist(), proposal.draft_ids.cpu().numpy()
        parents = proposal.parents.cpu().numpy()
        for row, r in enumerate(ask):
            matched = tree_match(drafts[row, : num[row]], parents[row, : num[row]], outputs[r][i:])
            acc[r][i] = 1 + min(matched, G[r] - i - 1)
    return acc


# drafts, parents: [n] one tree (`tree.py` layout); target: the tokens the walk must follow
def tree_match(drafts: np.ndarray, parents: np.ndarray, target: np.ndarray) -> int:
    """Length of the longest root-to-node path of the tree whose tokens are target[0], target[1], ...
    (the greedy tree walk when the target's argmax tokens are `target`)."""
    kids, cur, depth = children_lists(parents), -1, 0
    for token in target:
        nxt = next((j for j in kids[cur] if int(drafts[j]) == int(token)), None)
        if nxt is None:
            break
        cur, depth = nxt, depth + 1
    return depth


def _settle(acc: np.ndarray, i: int, chain: np.ndarray, out: np.ndarray, cap: int) -> bool:
    """Set acc[i] if the chain already decides it (it disagrees with the output, or is long enough)."""
    m = common_prefix(chain, out[i:])
    if m < len(chain) or len(chain) >= cap:
        acc[i] = 1 + min(m, cap)
        return True
    return False


def _want(have: int, cap: int, extendable: bool) -> int:
    """Draft tokens to ask for next: all at once, or doubling rounds (1, 1, 2, 4, ...) for an extendable
    chain, so that a draft that disagrees early costs few draft-model forwards."""
    return min(cap - have, max(1, have)) if extendable else cap - have


def sequence_features(model, proposer: Proposer, seqs: list[Sequence]):
    """Per sequence, the target's features of all its tokens (one teacher-forced pass), for proposers
    that read hidden states; None for the others."""
    if not proposer.needs_hidden or not seqs:
        return None
    from specscope.engine.engine import proposer_features

    layers = tuple(getattr(proposer, "hidden_layers", ()))
    feats = []
    for s in seqs:
        cache = model.new_cache(1, len(s.context))
        out = model.forward_chunks(cache, [0], [s.context], hidden_layers=layers, num_logits=[1])
        feats.append(proposer_features(out, 0, layers))
    return feats


def collect_traces(
    model,
    proposers: dict[str, Proposer],
    requests: list[Request],
    k_max: int,
    batch_size: int,
    max_new_tokens: int,
    stop_token_ids=(),
) -> Iterator[tuple[Sequence, dict[str, np.ndarray], dict[str, list]]]:
    """Yield (finished sequence, {proposer: acc_len}, {proposer: confidences}) per request, in groups of
    `batch_size` requests. Confidences (the trace format's `draft_confidence`: a number per output
    position, [] where the proposer never drafted) come from the proposers that report them. A proposer
    built with a tree (its `tree` is set; named `<proposer>@tree:<shape>` by the caller) gets its tree's
    acc_len (`tree_acc_lengths`).

    A failed request (e.g. too long) is yielded with empty dicts and `seq.error` set.
    """
    for start in range(0, len(requests), batch_size):
        group = requests[start : start + batch_size]
        engine = Engine.plain(model, RunSettings(batch_size=batch_size, max_new_tokens=max_new_tokens), stop_token_ids)
        finished = {s.request.id: s for s in engine.generate(group)}
        seqs = [finished[r.id] for r in group]
        ok = [s for s in seqs if not s.error]
        sure = {name: [] for name in proposers}
        feats: dict[tuple, list] = {}  # per set of target layers read: computed once for the group

        def features(p):
            if not p.needs_hidden:
                return None
            key = tuple(getattr(p, "hidden_layers", ()))
            if key not in feats:
                feats[key] = sequence_features(model, p, ok)
            return feats[key]

        values = {name: (tree_acc_lengths(p, ok, features(p)) if getattr(p, "tree", None) is not None
                         else acc_lengths(p, ok, k_max, features(p), sure[name]))
                  for name, p in proposers.items()}
        index = {s.request.id: j for j, s in enumerate(ok)}
        for s in seqs:
            j = index.get(s.request.id)
            if j is None:
                yield s, {}, {}
                continue
            confidence = {name: [[] if np.isnan(v) else round(float(v), 4) for v in sure[name][j]]
                          for name in proposers if sure[name]}
            yield s, {name: values[name][j] for name in proposers}, confidence
