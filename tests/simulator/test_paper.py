"""Paper mode: hand-computed times, agreement with the plain per-copy reference, and the bounds."""

import numpy as np
import pytest

from specscope.simulator.reference import reference_speedup
from specscope.simulator.grid import PAPER, run_grid
from specscope.simulator.synthetic import synthetic_trace


def one(trace, proposers, policy, b, costs, p=None, seed=42):
    return run_grid([trace], [proposers], [policy], [b], costs, mode=PAPER, seed=seed, ngram_match_override=p)[0]


def test_hand_computed_eagle_oracle_two_copies(make_trace, toy_costs):
    # P = 10, G = 6, B = 2. Plain: prefill T(20, 0) = 3.0; five decode steps at KV = 22, 24, ..., 30 cost
    # 1.2 + 0.01 KV = 1.42 + 1.44 + 1.46 + 1.48 + 1.50 = 7.30; latency = 3.0 + 0.5 + 7.30 + 5 x 0.5 = 13.3.
    # Oracle (inputs acc_len[pos - 1]): step 1 at pos 1 (acc 1): verify T(2, 22) = 1.42, drafts
    #   eagle(1, KV 22) = 0.272 and eagle(1, 23) = 0.273 (KV grows by copy 0's token first);
    # step 2 at pos 2 (acc 3): verify T(6, 24) = 1.84, drafts eagle(3, 24) = 0.374, eagle(3, 27) = 0.377;
    # step 3 at pos 5 (acc 2): verify T(4, 30) = 1.70, drafts eagle(2, 30) = 0.330, then copy 0 is done
    #   and frees 7 + 10 tokens: eagle(2, 15) = 0.315.
    # copy latencies 3.5 + 2.192 + 2.714 + 2.530 = 10.936 and 3.5 + 2.193 + 2.717 + 2.515 = 10.925.
    trace = make_trace([(10, {"eagle": [1, 3, 2, 1, 2, 1]})])
    row = one(trace, ("eagle",), "oracle", 2, toy_costs)
    assert row["ar_time_s"] == pytest.approx(13.3, abs=1e-12)
    assert row["sd_time_s"] == pytest.approx(10.9305, abs=1e-12)
    assert row["ar_throughput"] == pytest.approx(12 / 13.3)
    assert row["speedup"] == pytest.approx(13.3 / 10.9305)
    assert row["mean_acc_len"] == pytest.approx(6 / 3)  # 1 + 3 + 2 committed in 3 steps
    assert row["wasted_verify_share"] == 0.0


def test_hand_computed_ngram_fixed_k_with_and_without_misses(make_trace, toy_costs):
    # P = 10, G = 6, B = 1, fixed-2 (input 3). Plain: prefill 2.0, decode T(1, 11..15) = 6.15: 2.5 + 6.15 + 2.5.
    # Always a match: steps at pos 1, 2 (acc 1) and 3 (acc 4, commits 3) verify T(3, 11/12/13) =
    # 1.41, 1.42, 1.43, each with n-gram draft 0.1 x verify: 2.5 + 2.051 + 2.062 + 2.073 = 8.686.
    # Never a match (p = 0): the acc-1 steps propose nothing: T(1, 11) + 0.5, T(1, 12) + 0.5, then 2.073.
    trace = make_trace([(10, {"ngram": [1, 1, 4, 3, 2, 1]})])
    always = one(trace, ("ngram",), "fixed-2", 1, toy_costs, p=1.0)
    never = one(trace, ("ngram",), "fixed-2", 1, toy_costs, p=0.0)
    assert always["ar_time_s"] == pytest.approx(11.15, abs=1e-12)
    assert always["sd_time_s"] == pytest.approx(8.686, abs=1e-12)
    assert never["sd_time_s"] == pytest.approx(2.5 + 1.71 + 1.72 + 2.073, abs=1e-12)
    # verified drafts: 3 steps x 2 (always) of which 2 + 2 + 0 rejected; 1 step x 2 (never), none rejected
    assert always["wasted_verify_share"] == pytest.approx(4 / 6)
    assert never["wasted_verify_share"] == 0.0


@pytest.mark.parametrize("proposers,policy", [
    (("eagle",), "fixed-0"), (("eagle",), "fixed-1"), (("eagle",), "fixed-4"), (("eagle",), "oracle"),
    (("ngram",), "fixed-2"), (("ngram",), "oracle"), (("ngram", "eagle"), "oracle"),
])
@pytest.mark.parametrize("b", [1, 3, 8])
def test_matches_the_per_copy_reference(toy_costs, proposers, policy, b):
    trace = synthetic_trace(5, seed=11, prompt_range=(3, 30), output_range=(1, 40))
    for p in (1.0, 0.0):  # deterministic: every acc-1 position matches / none does
        row = one(trace, proposers, policy, b, toy_costs, p=p)
        ref = reference_speedup(trace, proposers, policy, b, toy_costs, {"ngram": p})
        assert row["speedup"] == pytest.approx(ref["speedup"], rel=1e-12)
        assert row["sd_throughput"] == pytest.approx(ref["sd_throughput"], rel=1e-12)
        assert row["ar_throughput"] == pytest.approx(ref["ar_throughput"], rel=1e-12)


def test_published_cost_model_matches_the_reference():
    from specscope.costs.presets import load_cost_model

    costs = load_cost_model("llama3.1-8b-h100")
    trace = synthetic_trace(4, seed=5, prompt_range=(100, 300), output_range=(20, 80))
    for proposers, policy in [(("eagle",), "fixed-3"), (("ngram", "eagle"), "oracle")]:
        row = one(trace, proposers, policy, 16, costs)
        ref = reference_speedup(trace, proposers, policy, 16, costs)
        assert row["speedup"] == pytest.approx(ref["speedup"], rel=1e-12)


def test_random_misses_agree_with_the_reference_in_distribution(toy_costs):
    # The vectorised replay draws the number of missing copies per step (binomial); the reference draws
    # each copy. Same distribution: averaged over seeds, the throughputs agree closely.
    trace = synthetic_trace(6, seed=2, prompt_range=(5, 20), output_range=(40, 80))
    fast = np.mean([one(trace, ("ngram",), "fixed-3", 8, toy_costs, p=0.5, seed=s)["sd_throughput"]
                    for s in range(40)])
    slow = np.mean([reference_speedup(trace, ("ngram",), "fixed-3", 8, toy_costs, {"ngram": 0.5}, seed=s)
                    ["sd_throughput"] for s in range(40)])
    always = one(trace, ("ngram",), "fixed-3", 8, toy_costs, p=1.0)["sd_throughput"]
    never = one(trace, ("ngram",), "fixed-3", 8, toy_costs, p=0.0)["sd_throughput"]
    assert abs(fast - slow) < 0.02 * abs(never - always)
    assert min(always, never) < fast < max(always, never)


def test_fixed_zero_runs_no_proposer_and_gives_exactly_one(toy_costs):
    trace = synthetic_trace(8, seed=3, prompt_range=(5, 50), output_range=(1, 60))
    for proposers in [("eagle",), ("ngram",), ("ngram", "eagle")]:
        for b in (1, 7, 32):
            row = one(trace, proposers, "fixed-0", b, toy_costs, p=0.3)
            assert row["speedup"] == 1.0
            assert row["draft_share"] == 0.0
            assert row["mean_acc_len"] == 1.0
            assert np.isnan(row["acceptance_rate"])


def test_oracle_beats_every_fixed_k_and_combine_beats_each_oracle(toy_costs):
    from specscope.costs.presets import load_cost_model

    trace = synthetic_trace(12, seed=4, prompt_range=(20, 200), output_range=(30, 150))
    sizes = [1, 4, 16, 64]
    for costs in (toy_costs, load_cost_model("llama3.1-8b-h100")):
        rows = run_grid([trace], [("eagle",), ("ngram",), ("ngram", "eagle")],
                         ["fixed-1", "fixed-2", "fixed-3", "fixed-5", "fixed-8", "oracle"], sizes, costs,
                         mode=PAPER, ngram_match_override=0.6)
        speed = {(r["proposers"], r["policy"], r["batch_size"]): r["speedup"] for r in rows}
        for b in sizes:
            for prop in ("eagle", "ngram"):
                for k in (1, 2, 3, 5, 8):
                    assert speed[(prop, "oracle", b)] >= speed[(prop, f"fixed-{k}", b)]
                assert speed[("ngram,eagle", "oracle", b)] >= speed[(prop, "oracle", b)]
