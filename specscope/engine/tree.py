"""Draft trees in the engine: the tree's shape (`specscope/tree_spec.py`) and the attention layout of a tree chunk.

Shapes (`--tree`: `DxB`, the presets `6` and `21`, `dynamic:N`) are parsed torch-free in
`specscope/tree_spec.py` and re-exported here. A static `DxB` is a full B-ary tree with D levels
counting its root, the sequence's last committed token; every node below the root is a draft token,
so a tree holds B + B^2 + ... + B^(D-1) draft nodes and the longest root-to-leaf path accepts D - 1
of them (plus the bonus token). This is the
reading that reproduces the study's counts: depth 3 with branching 2 gives 2 + 4 = 6 draft tokens;
with branching 4 it gives 4 + 16 = 20 draft tokens, i.e. the study's 21 tokens once the root, which
the verification pass scores too, is counted. `Dx1` is the chain with k = D - 1.

Nodes are numbered breadth first, children of a node in the proposer's order (most probable first),
so the first n nodes of a tree always form a tree themselves. A tree travels as `parents`: for draft
node j, the index of its parent draft node, or -1 for a child of the root (a chain: parent j - 1).
A dynamic tree (`dynamic:N`) has its own shape per sequence and step, in the same layout
(`Proposal.parents` [B, K], -1 padded past each row's drafts); nothing below assumes a full tree.

Attention layout of a chunk with a tree (`chunk_layout`): chunk token i is written into the KV cache
at `start + i` (its chunk offset, like any chunk) but is rotated as position `start + depth(i)` and
sees only the cache prefix [0, start) plus its own ancestors and itself. After verification the
engine moves the accepted path's keys/values to consecutive positions (`KVCache.move`).

    >>> parse_tree("3x2").parents.tolist()
    [-1, -1, 0, 0, 1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specscope.tree_spec import MAX_TREE_NODES, DynamicTreeSpec, TreeSpec, parse_tree  # noqa: F401 (re-exported)


# parents: [n] draft parents (-1 = root)
def children_lists(parents) -> dict[int, list[int]]:
    """{node: its children in order}; key -1 is the root."""
    kids: dict[int, list[int]] = {-1: []}
    for j, p in enumerate(parents):
        kids.setdefault(int(p), []).append(j)
        kids.setdefault(j, [])
    return kids


def check_parents(parents) -> None:
    """Raise ValueError unless every parent precedes its child (-1 = root)."""
    for j, p in enumerate(parents):
        if not -1 <= int(p) < j:
            raise ValueError(f"tree node {j} has parent {int(p)}; a parent must be -1 or an earlier node")


def chunk_parents(num_chain: int, draft_parents) -> np.ndarray:
    """Parents of a verification chunk: `num_chain` committed tokens as a chain, then the draft tree.

    Chunk indices: token i's parent is i - 1 for the chain (-1 for the first: it follows the cache
    prefix); draft node j sits at num_chain + j and hangs under the last chain token when its parent is -1.
    """
    draft_parents = np.asarray(draft_parents, dtype=np.int64)
    chain = np.arange(num_chain, dtype=np.int64) - 1
    return np.concatenate((chain, np.where(draft_parents < 0, num_chain - 1, draft_parents + num_chain)))


# parents: [n] chunk parents (-1 = follows the cache prefix)
def depths(parents) -> np.ndarray:
    """Depth of each chunk token below the cache prefix (a token with parent -1 has depth 0)."""
    out = np.zeros(len(parents), dtype=np.int64)
    for i, p in enumerate(parents):
        out[i] = 0 if p < 0 else out[p] + 1
    return out


def ancestor_mask(parents) -> np.ndarray:
    """[n, n] bool: row i is True at i's ancestors within the chunk and at i itself."""
    n = len(parents)
    mask = np.zeros((n, n), dtype=bool)
    for i, p in enumerate(parents):
        if p >= 0:
            mask[i] = mask[p]
        mask[i, i] = True
    return mask


@dataclass
class ChunkLayout:
    """Where each packed token is rotated to and which cache entries it sees (see the module docstring)."""

    rope_positions: np.ndarray  # [N] position used for the rotary embedding
    visible: np.ndarray  # [N, W] int64: col 0 = prefix length P (keys 0..P-1), then extra key indices, -1 padded
    masks: list[np.ndarray | None]  # per chunk: ancestor_mask of its tree, None for a plain chunk


def chunk_layout(starts, lens, trees) -> ChunkLayout:
    """Layout of a packed call whose chunk b starts at cache index starts[b]; trees[b] = parents or None."""
    rope, rows, masks = [], [], []
    for start, n, parents in zip(starts, lens, trees):
        if parents is None:
            rope.append(start + np.arange(n))
            rows.extend([start + i + 1] for i in range(n))  # causal: keys 0..position
            masks.append(None)
            continue
        parents = np.asarray(parents, dtype=np.int64)
        if len(parents) != n:
            raise ValueError(f"a tree chunk of {n} tokens needs {n} parents (got {len(parents)})")
        check_parents(parents)
        anc = ancestor_mask(parents)
        rope.append(start + depths(parents))
        rows.extend([start] + (start + np.flatnonzero(anc[i])).tolist() for i in range(n))
        masks.append(anc)
    width = max(len(r) for r in rows)
    visible = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        visible[i, : len(r)] = r
    return ChunkLayout(np.concatenate(rope).astype(np.int64), visible, masks)
