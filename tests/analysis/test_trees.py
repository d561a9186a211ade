"""The report's chain-vs-tree section: pairing tree cells with their proposer's chain, measured and simulated,
and the crossover in batch size."""

import numpy as np
import pandas as pd

from specscope.analysis.loaders import Study
from specscope.analysis.page import ReportContext
from specscope.analysis.sections.trees import chain_against_tree_section
from specscope.analysis.trees import crossover, crossover_table, measured_pairs, simulated_pairs


def runs():
    rows = []
    for b, chain, tree in ((1, 1.3, 1.4), (4, 1.2, 1.1), (16, 1.1, 0.8)):
        rows += [
            {"workload": "chat", "method": "eagle3", "k": 3, "batch_size": b, "speedup": chain, "mean_acc_len": 2.0,
             "t_verify": 1.0, "num_steps": 100},
            {"workload": "chat", "method": "eagle3", "k": 5, "batch_size": b, "speedup": 1.0, "mean_acc_len": 2.2,
             "t_verify": 1.0, "num_steps": 100},
            {"workload": "chat", "method": "eagle3@tree:dynamic:21:7x4", "k": np.nan, "batch_size": b, "speedup": tree,
             "mean_acc_len": 2.6, "t_verify": 2.0, "num_steps": 80},
            {"workload": "chat", "method": "none", "k": 0, "batch_size": b, "speedup": 1.0, "mean_acc_len": 1.0,
             "t_verify": 1.0, "num_steps": 200},
        ]
    return pd.DataFrame(rows)


def simulation():
    rows = []
    for b, chain, tree in ((1, 1.5, 1.6), (8, 1.3, 1.3), (64, 1.1, 0.7)):
        for proposers, policy, speedup, acc in (("draft", "fixed-3", chain, 1.8), ("draft", "oracle", 2.0, 1.8),
                                                ("draft@tree:3x2", "tree", tree, 2.1), ("draft@tree:3x2", "oracle", 2.1, 2.1),
                                                ("draft", "fixed-1", 1.0, 1.5)):
            rows.append({"trace": "code", "workload": "code-edit", "mode": "serve", "cost_model": "toy", "proposers": proposers, "policy": policy,
                         "batch_size": b, "speedup": speedup, "mean_acc_len": acc})
    return pd.DataFrame(rows)


def test_measured_trees_pair_with_the_k3_chain():
    table = measured_pairs(runs())
    assert sorted(set(table["variant"])) == ["chain k=3", "tree dynamic:21:7x4"]
    tree = table[(table["variant"] == "tree dynamic:21:7x4") & (table["batch_size"] == 1)].iloc[0]
    assert tree["proposer"] == "eagle3" and tree["speedup"] == 1.4 and tree["verify_ms_per_step"] == 25.0
    assert crossover(table, "tree dynamic:21:7x4", "chain k=3") == "tree ahead below B=4, chain from B=4"


def test_simulated_trees_pair_with_the_chain_and_carry_the_oracle_bound():
    table = simulated_pairs(simulation())
    assert sorted(set(table["variant"])) == ["chain k=3", "tree 3x2"]
    row = table[(table["variant"] == "tree 3x2") & (table["batch_size"] == 64)].iloc[0]
    assert row["speedup"] == 0.7 and row["oracle"] == 2.1 and row["mean_acc_len"] == 2.1
    assert crossover(table, "tree 3x2", "chain k=3") == "tree ahead below B=8, chain from B=8"


def test_crossover_words_and_the_side_by_side_table():
    table = pd.DataFrame({"variant": ["tree 6"] * 2 + ["chain k=3"] * 2, "batch_size": [1, 4, 1, 4],
                          "speedup": [1.2, 1.1, 1.0, 1.0]})
    assert crossover(table, "tree 6", "chain k=3") == "tree ahead at every B (1-4)"
    assert crossover(table.assign(speedup=[1.0, 1.0, 1.2, 1.1]), "tree 6", "chain k=3") == "chain ahead from B=1"
    side = crossover_table(measured_pairs(runs()), simulated_pairs(simulation()))
    assert list(side["workload"]) == ["chat", "code-edit"] and list(side["proposer"]) == ["eagle3", "draft"]
    assert side.iloc[0]["acc_len tree/chain (measured)"] == "1.30x"
    assert side.iloc[1]["crossover (simulated)"] == "tree ahead below B=8, chain from B=8"


def test_the_section_is_absent_without_trees_says_what_is_missing_or_shows_a_figure(tmp_path):
    empty = Study(tmp_path, pd.DataFrame(), pd.DataFrame(), [], None, None, None)
    assert chain_against_tree_section(ReportContext(empty, pd.DataFrame())) == []  # no trees in the study: no section
    lone = runs()[runs()["method"] != "eagle3"]  # a tree cell without its chain
    [section] = chain_against_tree_section(ReportContext(Study(tmp_path, lone, pd.DataFrame(), [], None, None, None), lone))
    assert section.missing and "--tree" in section.missing and not section.blocks
    study = Study(tmp_path, runs(), pd.DataFrame(), [], simulation(), None, None)
    measured = runs().assign(model="m", device="cpu", threads=2, temperature=0.0, label="x", partial=False)
    [section] = chain_against_tree_section(ReportContext(study, measured))
    # the figure, then a paragraph and a table each for the crossover, the measured and the simulated cells
    assert not section.missing and sum(b.is_figure for b in section.blocks) == 1 and len(section.blocks) == 7
