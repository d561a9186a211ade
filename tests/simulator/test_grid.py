"""Sweeps: input checks, n-gram match probabilities, skipped pairs, determinism with a seed."""

from pathlib import Path

import pytest

from specscope.costs.presets import load_cost_model
from specscope.errors import SpecscopeError
from specscope.formats.simulation import COLUMNS
from specscope.simulator.grid import PAPER, SERVE, ngram_match_prob, parse_proposer_set, plan, run_grid
from specscope.simulator.synthetic import synthetic_trace


@pytest.fixture(scope="module")
def trace():
    return synthetic_trace(10, seed=6, prompt_range=(10, 60), output_range=(20, 90))


def test_rows_have_the_documented_columns(trace, toy_costs):
    rows = run_grid([trace], [("eagle",), ("ngram", "eagle")], ["fixed-1", "oracle"], [1, 4], toy_costs)
    assert len(rows) == 2 * 2 + 1 * 2  # fixed-1 does not apply to the combination
    assert all(list(r) == COLUMNS for r in rows)
    assert {r["proposers"] for r in rows} == {"eagle", "ngram,eagle"}


@pytest.mark.parametrize("mode", [PAPER, SERVE])
def test_seeded_runs_repeat_exactly_and_seeds_matter(trace, toy_costs, mode):
    args = ([trace], [("ngram",)], ["fixed-3"], [1, 8], toy_costs)
    a = run_grid(*args, mode=mode, seed=1, ngram_match_override=0.5)
    b = run_grid(*args, mode=mode, seed=1, ngram_match_override=0.5)
    c = run_grid(*args, mode=mode, seed=2, ngram_match_override=0.5)
    assert a == b
    assert [r["speedup"] for r in a] != [r["speedup"] for r in c]


def test_a_row_does_not_depend_on_the_rest_of_the_sweep(trace, toy_costs):
    alone = run_grid([trace], [("ngram",)], ["fixed-3"], [8], toy_costs, mode=PAPER, ngram_match_override=0.5)
    among = run_grid([trace], [("eagle",), ("ngram",)], ["fixed-1", "fixed-3"], [1, 8], toy_costs, mode=PAPER,
                      ngram_match_override=0.5)
    assert alone[0] in among


def test_ngram_match_probability_defaults():
    trace = synthetic_trace(1, seed=0)
    assert ngram_match_prob(trace, 0.3) == 0.3
    assert ngram_match_prob(trace, None) == 1.0  # unknown workload: always a match
    trace.path = Path("data/combined_instructcoder.jsonl")
    assert ngram_match_prob(trace, None) == 0.8  # published value, from the SpecDecode-Bench file name
    trace.path = None
    trace.workload = "cnn"
    assert ngram_match_prob(trace, None) == 0.4


def test_bad_inputs_are_one_clear_error(trace, toy_costs):
    costs = load_cost_model("llama3.1-8b-h100")
    with pytest.raises(SpecscopeError, match=r"no acc_len for proposer 'medusa'. Present: ngram, eagle"):
        run_grid([trace], [("medusa",)], ["oracle"], [1], costs)
    with pytest.raises(SpecscopeError, match="Unknown policy 'greedy'"):
        run_grid([trace], [("eagle",)], ["greedy"], [1], costs)
    with pytest.raises(SpecscopeError, match="batch sizes must be integers >= 1"):
        run_grid([trace], [("eagle",)], ["oracle"], [0], costs)
    with pytest.raises(SpecscopeError, match="Unknown mode 'fast'"):
        run_grid([trace], [("eagle",)], ["oracle"], [1], costs, mode="fast")
    with pytest.raises(SpecscopeError, match=r"--ngram-match-prob must be a probability"):
        run_grid([trace], [("ngram",)], ["oracle"], [1], costs, ngram_match_override=1.5)
    with pytest.raises(SpecscopeError, match="no policy applies"):
        run_grid([trace], [("ngram", "eagle")], ["fixed-2"], [1], costs)
    no_ngram = load_cost_model("llama3.1-8b-h100")
    no_ngram.drafts.pop("ngram")
    with pytest.raises(SpecscopeError, match=r"has no draft cost for proposer 'ngram' \(it has: eagle\)"):
        run_grid([trace], [("ngram",)], ["oracle"], [1], no_ngram)
    # plain decoding needs no draft cost at all
    assert run_grid([trace], [("ngram",)], ["fixed-0"], [1], no_ngram)[0]["speedup"] == 1.0


def test_proposer_sets_and_plan():
    assert parse_proposer_set("ngram,eagle") == ("ngram", "eagle")
    with pytest.raises(SpecscopeError, match="names a proposer twice"):
        parse_proposer_set("eagle,eagle")
    with pytest.raises(SpecscopeError, match="empty name"):
        parse_proposer_set("eagle,")
    pairs, skipped = plan([("eagle",), ("ngram", "eagle")], ["fixed-1", "oracle"])
    assert pairs == [(("eagle",), "fixed-1"), (("eagle",), "oracle"), (("ngram", "eagle"), "oracle")]
    assert [(s.proposers, s.policy) for s in skipped] == [("ngram,eagle", "fixed-1")]
