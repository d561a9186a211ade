"""Draft-tree shapes, as `--tree` spells them: static `DxB` trees, the study's presets and dynamic trees. Torch-free.

Shared by the engine (which drafts and verifies the trees), traces (which record the acc_len a tree
shape achieves, `formats/trace.py`), the simulator (which prices verifying a tree) and sweeps.

    --tree 3x2            static: a full B-ary tree of D levels counting its root (the last committed
                          token); every node below the root is a draft token: 3x2 = 2 + 4 = 6 drafts,
                          whose longest root-to-leaf path accepts D - 1 = 2 of them. `Dx1` is a chain.
    --tree 6, --tree 21   the study's static trees (EAGLE / EAGLE-3 trees of 6 and 21 tokens):
                          `6` = 3x2 (6 draft tokens), `21` = 3x4 (20 draft tokens, 21 with the root the
                          verification pass scores too). These are the only full trees with those counts.
    --tree dynamic:N      a dynamic tree of N draft tokens chosen by draft confidence (EAGLE-2 / EAGLE-3 as
    --tree dynamic:N:DxK  served by SGLang): from the root, expand the K most probable children of every
                          frontier node, keep as the next frontier the K new nodes with the highest cumulative
                          draft probability (product along the path), for D - 1 levels; then keep the N nodes
                          of highest cumulative probability among all candidates. Default DxK: 7x4
                          (paths of up to 6 drafts). The N kept nodes always form a tree: a child's cumulative
                          probability never exceeds its parent's, and ties keep the parent (drafted first).

Counting: a shape's `num_nodes` is the draft tokens verified per sequence and step (the root not
counted, as --k counts drafts); `depth` counts the root, so an accepted path is at most depth - 1
drafts and a step commits at most `depth` tokens. `draft_tokens` is the drafting work in the unit
the draft cost forms use for a chain of k (k + 1 tokens: the catch-up row + k - 1 fed drafts + 1):
1 + the nodes whose children are drafted (each runs through the drafter once).

Node order (`parents`): breadth first, children of a node in the drafter's order (most probable
first), so every prefix of a tree is a tree and parent(j) < j. Trace keys: the acc_len of proposer P
under shape S is stored as `P@tree:<label>` (`tree_key`), e.g. `eagle3@tree:3x2`.

    >>> parse_tree("6").label, parse_tree("6").num_nodes
    ('3x2', 6)
    >>> parse_tree("dynamic:20").label
    'dynamic:20:7x4'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from specscope.errors import SpecscopeError

MAX_TREE_NODES = 256  # draft nodes per sequence; larger trees only make every verification pass slower
PRESETS = {"6": "3x2", "21": "3x4"}  # the study's 6- and 21-token trees
DYNAMIC_DEFAULT_DEPTH, DYNAMIC_DEFAULT_TOPK = 7, 4  # dynamic:N without DxK: paths of up to 6 drafts, top-4
TREE_KEY = "@tree:"  # trace key of a proposer under a tree shape: "<proposer>@tree:<label>"
HINT = ("give depth x branching (3x2 = 2 + 4 = 6 draft tokens; depth counts the root), a preset (6 = 3x2, "
        "21 = 3x4) or dynamic:N[:DxK] (N draft tokens by draft confidence, e.g. dynamic:20)")


@dataclass(frozen=True)
class TreeSpec:
    """A full `branching`-ary tree of `depth` levels, the root (last committed token) included."""

    depth: int
    branching: int
    dynamic = False

    @property
    def label(self) -> str:
        return f"{self.depth}x{self.branching}"

    @property
    def num_nodes(self) -> int:
        """Draft nodes (the root excluded)."""
        return sum(self.branching**level for level in range(1, self.depth))

    @property
    def expanded(self) -> int:
        """Nodes whose children are drafted: the root and every level but the last."""
        return sum(self.branching**level for level in range(0, self.depth - 1))

    @property
    def draft_tokens(self) -> int:
        """Drafting work per sequence and step in the draft cost forms' unit (module docstring)."""
        return self.expanded + 1

    @property
    def parents(self) -> np.ndarray:
        """[num_nodes] parent of each draft node in breadth-first order (-1 = the root)."""
        parents, level, first = [], [-1], 0
        for _ in range(1, self.depth):
            nxt = []
            for p in level:
                for _ in range(self.branching):
                    nxt.append(first + len(nxt))
                    parents.append(p)
            level, first = nxt, first + len(nxt)
        return np.array(parents, dtype=np.int64)

    def levels(self) -> list[range]:
        """Node indices of each draft level (level 1 = the root's children)."""
        out, start = [], 0
        for level in range(1, self.depth):
            n = self.branching**level
            out.append(range(start, start + n))
            start += n
        return out


@dataclass(frozen=True)
class DynamicTreeSpec:
    """`dynamic:N:DxK`: N draft nodes kept from a tree grown D levels deep (root counted), top-K per expansion."""

    nodes: int
    depth: int = DYNAMIC_DEFAULT_DEPTH
    topk: int = DYNAMIC_DEFAULT_TOPK
    dynamic = True

    @property
    def label(self) -> str:
        return f"dynamic:{self.nodes}:{self.depth}x{self.topk}"

    @property
    def num_nodes(self) -> int:
        return self.nodes

    @property
    def candidates(self) -> int:
        """Nodes drafted before the N most probable are kept: K at level 1, K * K at every deeper level."""
        return self.topk + (self.depth - 2) * self.topk * self.topk

    @property
    def expanded(self) -> int:
        """The root and the K frontier nodes of every level but the last."""
        return 1 + (self.depth - 2) * self.topk

    @property
    def draft_tokens(self) -> int:
        return self.expanded + 1


def parse_tree(spec: str) -> TreeSpec | DynamicTreeSpec:
    """`'3x2'`, `'6'`, `'21'`, `'dynamic:20'`, `'dynamic:20:7x4'` -> a tree spec, or a one-line SpecscopeError."""
    text = str(spec).strip()
    text = PRESETS.get(text, text)
    dynamic = re.fullmatch(r"dynamic\s*:\s*(\d+)(?:\s*:\s*(\d+)\s*[xX]\s*(\d+))?", text, flags=re.IGNORECASE)
    if dynamic:
        nodes = int(dynamic.group(1))
        depth = int(dynamic.group(2)) if dynamic.group(2) else DYNAMIC_DEFAULT_DEPTH
        topk = int(dynamic.group(3)) if dynamic.group(3) else DYNAMIC_DEFAULT_TOPK
        if nodes < 1 or depth < 2 or topk < 1:
            raise SpecscopeError(f"--tree '{spec}': need N >= 1, depth >= 2 and top-k >= 1; {HINT}")
        tree = DynamicTreeSpec(nodes, depth, topk)
        if nodes > MAX_TREE_NODES:
            raise SpecscopeError(f"--tree '{spec}' keeps {nodes} draft nodes per sequence (at most {MAX_TREE_NODES}); "
                                 "use a smaller N")
        if nodes > tree.candidates:
            raise SpecscopeError(f"--tree '{spec}': a {depth}x{topk} growth drafts only {tree.candidates} candidates, "
                                 f"fewer than N = {nodes}; raise the depth or top-k (dynamic:{nodes}:DxK)")
        return tree
    match = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", text)
    if not match:
        raise SpecscopeError(f"--tree '{spec}' is not a tree spec; {HINT}")
    depth, branching = int(match.group(1)), int(match.group(2))
    if depth < 2 or branching < 1:
        raise SpecscopeError(f"--tree '{spec}': need depth >= 2 and branching >= 1; {HINT}")
    tree = TreeSpec(depth, branching)
    if tree.num_nodes > MAX_TREE_NODES:
        raise SpecscopeError(
            f"--tree '{spec}' has {tree.num_nodes} draft nodes per sequence (at most {MAX_TREE_NODES}); "
            "use a smaller depth or branching"
        )
    return tree


def tree_key(proposer: str, spec) -> str:
    """The trace key of `proposer`'s acc_len under a tree shape (a spec string or a parsed spec)."""
    label = spec.label if hasattr(spec, "label") else parse_tree(spec).label
    return f"{proposer}{TREE_KEY}{label}"


def split_tree_key(name: str) -> tuple[str, TreeSpec | DynamicTreeSpec | None]:
    """`'eagle3@tree:3x2'` -> ('eagle3', TreeSpec(3, 2)); a chain proposer's name -> (name, None)."""
    if TREE_KEY not in name:
        return name, None
    base, _, shape = name.partition(TREE_KEY)
    return base, parse_tree(shape)


def shape_label(spec: str) -> str:
    """A tree spec as a file-name part (sweep cell names): `3x2`, `6`, `dynamic-20`, `dynamic-20-7x4`."""
    return re.sub(r"[^A-Za-z0-9.x-]+", "-", str(spec).strip().lower())
