"""study/twins.py: which simulator policy replays a measured cell as its twin."""

from specscope.study.twins import cell_policy


def test_each_kind_of_cell_gets_the_policy_it_ran():
    assert cell_policy({"method": "none", "k": 0}) is None
    assert cell_policy({"method": "ngram", "k": 3}) == (("ngram",), "fixed-3", 3)
    assert cell_policy({"method": "ngram", "k": 3, "adaptive": True}) == (("ngram",), "adaptive", None)
    assert cell_policy({"method": "ngram,draft", "k": 3, "adaptive": True}) == (("ngram", "draft"), "adaptive-combine",
                                                                               None)
    # a tree cell replays its traced tree key, the whole tree verified every step
    assert cell_policy({"method": "eagle3", "k": 0, "tree": "6"}) == (("eagle3@tree:3x2",), "tree", None)
