"""The chain-vs-tree tables (the section: `sections/trees.py`): a proposer drafting a chain of k against the same proposer drafting a tree.

The study's result on tree verification: trees lead slightly at batch size 1, where the target step is
memory-bound and a tree's extra tokens are nearly free to verify, and chains are often stronger as the
batch grows and every verified token costs compute. The section shows it for every proposer the study
ran both ways (heads and draft models alike):

- measured cells (`runs/`): a tree cell is method `<proposer>@tree:<shape>` (`loaders.read_summary`),
  compared with the proposer's chain cells of k = CHAIN_K (else its largest k) at the same workload
  and batch size — speedup over `none`, mean acceptance length, verification time per step;
- simulated (`simulation.csv`): the tree key under policy `tree` (the whole tree verified every step)
  against the chain under `fixed-<k>`, and the oracle bound of each;
- the crossover: the smallest batch size from which the chain's speedup is at least the tree's, from
  measurement and from simulation side by side.

Shown only when the study has trees (tree cells, traced tree keys or simulated ones), as the analytic
cost model's section is; empty with the reason when none of them sits next to a chain of its proposer.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from specscope.analysis.loaders import Study
from specscope.tree_spec import TREE_KEY, split_tree_key

TITLE = "Chain against tree"
CHAIN_K = 3  # the study's chain
TREE_POLICY = "tree"


def is_tree(name) -> bool:
    return isinstance(name, str) and TREE_KEY in name


def tree_shape(name: str) -> str:
    """`eagle3@tree:3x2` -> `3x2`."""
    return name.partition(TREE_KEY)[2]


def measured_pairs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (workload, proposer, variant, batch size) of the measured chain-vs-tree cells: variant is
    `chain k=K` or `tree <shape>`; speedup, mean acceptance length, verify ms per step."""
    columns = ["workload", "proposer", "variant", "batch_size", "speedup", "mean_acc_len", "verify_ms_per_step"]
    if runs.empty or "speedup" not in runs.columns:
        return pd.DataFrame(columns=columns)
    trees = runs[runs["method"].map(is_tree)]
    rows = []
    for (workload, method), cells in trees.groupby(["workload", "method"]):
        proposer = split_tree_key(method)[0]
        chains = runs[(runs["workload"] == workload) & (runs["method"] == proposer) & runs["k"].notna()]
        if chains.empty:
            continue
        k = CHAIN_K if (chains["k"] == CHAIN_K).any() else chains["k"].max()
        for variant, sub in ((f"tree {tree_shape(method)}", cells), (f"chain k={int(k)}", chains[chains["k"] == k])):
            for _, r in sub.iterrows():
                steps = r.get("num_steps")
                verify = (r["t_verify"] / steps * 1e3 if steps and not pd.isna(steps) and not pd.isna(r.get("t_verify"))
                          else np.nan)
                rows.append([workload, proposer, variant, int(r["batch_size"]), r["speedup"], r["mean_acc_len"], verify])
    table = pd.DataFrame(rows, columns=columns).drop_duplicates(["workload", "proposer", "variant", "batch_size"])
    return table.sort_values(["workload", "proposer", "variant", "batch_size"]).reset_index(drop=True)


def simulated_pairs(sim: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of (workload, proposer, variant, batch_size, speedup, oracle, mean_acc_len) from the simulation: each
    tree key under policy `tree` and its proposer's chain under fixed-CHAIN_K (else its largest fixed k)."""
    columns = ["workload", "proposer", "variant", "batch_size", "speedup", "oracle", "mean_acc_len"]
    if sim is None or sim.empty or "proposers" not in sim.columns:
        return pd.DataFrame(columns=columns)
    sim = sim.copy()
    sim["workload"] = sim["workload"].fillna(sim["trace"]) if "workload" in sim.columns else sim["trace"]
    rows = []

    def oracle(pset, workload, b):
        hit = sim[(sim["proposers"] == pset) & (sim["policy"] == "oracle") & (sim["workload"] == workload)
                  & (sim["batch_size"] == b)]
        return float(hit["speedup"].mean()) if not hit.empty else np.nan

    trees = sim[sim["proposers"].map(is_tree) & (sim["policy"] == TREE_POLICY)]
    for (workload, key), cells in trees.groupby(["workload", "proposers"]):
        proposer = split_tree_key(key)[0]
        chains = sim[(sim["proposers"] == proposer) & (sim["workload"] == workload)
                     & sim["policy"].astype(str).str.fullmatch(r"fixed-[1-9]\d*")]
        if chains.empty:
            continue
        ks = chains["policy"].str.slice(6).astype(int)
        k = CHAIN_K if (ks == CHAIN_K).any() else int(ks.max())
        for variant, sub, pset in ((f"tree {tree_shape(key)}", cells, key),
                                   (f"chain k={k}", chains[ks == k], proposer)):
            for b, group in sub.groupby("batch_size"):
                rows.append([workload, proposer, variant, int(b), float(group["speedup"].mean()),
                             oracle(pset, workload, b), float(group["mean_acc_len"].mean())
                             if "mean_acc_len" in group.columns else np.nan])
    table = pd.DataFrame(rows, columns=columns).drop_duplicates(["workload", "proposer", "variant", "batch_size"])
    return table.sort_values(["workload", "proposer", "variant", "batch_size"]).reset_index(drop=True)


def crossover(table: pd.DataFrame, tree_variant: str, chain_variant: str) -> str:
    """Where the chain catches up with the tree over the batch sizes both have, in words."""
    tree = table[table["variant"] == tree_variant].set_index("batch_size")["speedup"]
    chain = table[table["variant"] == chain_variant].set_index("batch_size")["speedup"]
    sizes = sorted(set(tree.index) & set(chain.index))
    if not sizes:
        return ""
    chain_ahead = [b for b in sizes if chain[b] >= tree[b]]
    if not chain_ahead:
        return "tree ahead at " + (f"B={sizes[0]}" if len(sizes) == 1 else f"every B ({sizes[0]}-{sizes[-1]})")
    if chain_ahead[0] == sizes[0]:
        return f"chain ahead from B={sizes[0]}"
    return f"tree ahead below B={chain_ahead[0]}, chain from B={chain_ahead[0]}"


def crossover_table(measured: pd.DataFrame, simulated: pd.DataFrame) -> pd.DataFrame:
    """Per workload, proposer and tree shape: acceptance lengths and the crossover, measured and simulated."""
    rows = []
    keys = pd.concat([measured[["workload", "proposer", "variant"]], simulated[["workload", "proposer", "variant"]]])
    for (workload, proposer), group in keys.groupby(["workload", "proposer"]):
        variants = sorted(set(group["variant"]))
        chain = next((v for v in variants if v.startswith("chain")), None)
        for tree in (v for v in variants if v.startswith("tree")):
            row = {"workload": workload, "proposer": proposer, "tree": tree.removeprefix("tree "), "chain": chain}
            for name, table in (("measured", measured), ("simulated", simulated)):
                sub = table[(table["workload"] == workload) & (table["proposer"] == proposer)]
                acc = sub.groupby("variant")["mean_acc_len"].mean()
                ratio = acc.get(tree, np.nan) / acc.get(chain, np.nan) if chain else np.nan
                row[f"acc_len tree/chain ({name})"] = f"{ratio:.2f}x" if not pd.isna(ratio) else ""
                row[f"crossover ({name})"] = crossover(sub, tree, chain) if chain else ""
            rows.append(row)
    return pd.DataFrame(rows)


def has_trees(study: Study, runs: pd.DataFrame) -> bool:
    """Whether any measured cell, traced proposer or simulated proposer set is a tree."""
    sim = study.simulation
    return (("method" in runs.columns and runs["method"].map(is_tree).any())
            or any(is_tree(p) for t in study.traces for p in t.proposers)
            or (sim is not None and "proposers" in sim.columns and sim["proposers"].map(is_tree).any()))
