"""The roofline form: its parts, its TOML round trip, and the goal against the published H100 preset."""

import numpy as np
import pytest

from specscope.costs.analytic import RooflineCost
from specscope.costs.presets import load_cost_model
from specscope.costs.pricing import analytic_cost_model
from specscope.costs.presets import read_cost_model, write_cost_model
from specscope.errors import SpecscopeError

FORM = dict(weight_bytes=1e9, kv_bytes_per_token=1e5, flops_per_token=2e9, attention_flops_per_kv=1e5, bandwidth=1e12,
            peak_flops=1e14, weight_bandwidth_efficiency=0.8, kv_bandwidth_efficiency=0.9, compute_efficiency=0.5)


def test_parts_add_up_and_overlap_one_is_the_roofline_max():
    form = RooflineCost(**FORM)
    n, kv = 100.0, 5000.0
    weights, matmul = 1e9 / (1e12 * 0.8), 2e9 * n / (1e14 * 0.5)
    kv_s = max(1e5 * (kv + n) / (1e12 * 0.9), 1e5 * kv / (1e14 * 0.5))
    assert form(n, kv) == pytest.approx(weights + matmul + kv_s)
    maxed = RooflineCost(**FORM, overlap=1.0)
    assert maxed(n, kv) == pytest.approx(max(weights, matmul) + kv_s)
    knee = form.compute_bound_from()
    assert form.weights_s() == pytest.approx(form.matmul_s(knee))


def test_vectorised_like_scalars_and_passes_repeat_the_weights():
    form = RooflineCost(**FORM)
    n, kv = np.array([1.0, 8, 64, 512]), np.array([0.0, 1e3, 1e4, 1e5])
    assert np.allclose(form(n, kv), [form(a, b) for a, b in zip(n, kv)])
    chain = RooflineCost(**FORM, passes=3)
    assert chain(6, 1000) == pytest.approx(3 * form(2, 1000))
    assert chain.slope(6, 1000) == pytest.approx(chain(7, 1000) - chain(6, 1000))
    assert chain.fixed(1000) == pytest.approx(3 * form(0, 1000))


@pytest.mark.parametrize("field, value, message", [("bandwidth", 0.0, "bandwidth = 0.0 must be > 0"),
                                                   ("overlap", 1.5, "overlap = 1.5 must be between 0")])
def test_bad_numbers_are_value_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        RooflineCost(**{**FORM, field: value})


def test_llama_8b_on_h100_within_10_percent_of_the_published_preset():
    preset = load_cost_model("llama3.1-8b-h100")
    analytic = analytic_cost_model("llama-3.1-8b", "h100-sxm").model
    n, kv = np.meshgrid(np.unique(np.geomspace(1, 2048, 40).round()), np.linspace(0, 262144, 9))
    ratio = analytic.target(n, kv) / preset.target(n, kv)
    assert np.all(np.abs(ratio - 1) <= 0.10), float(np.abs(ratio - 1).max())
    assert analytic.overhead == pytest.approx(preset.overhead)


def test_analytic_cost_model_round_trips_through_toml(tmp_path):
    built = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4).model
    path = tmp_path / "c.toml"
    write_cost_model(path, built)
    back = read_cost_model(path)
    assert back.target == built.target and back.drafts == built.drafts
    assert back.max_kv_tokens == built.max_kv_tokens > 0
    assert back.provenance["analytic"] is True and back.provenance["hardware"] == "h100-sxm"
    assert back.provenance["tp"] == 4


def test_a_hand_written_roofline_table_may_leave_out_defaulted_fields(tmp_path):
    path = tmp_path / "c.toml"
    lines = "\n".join(f"{k} = {v}" for k, v in FORM.items())
    path.write_text(f'[target]\nform = "roofline"\n{lines}\n[overhead]\nper_step = 0.001\n')
    model = read_cost_model(path)
    assert model.target == RooflineCost(**FORM) and model.max_kv_tokens is None


def test_a_bad_memory_table_is_one_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[target]\nc_fixed = 0.1\nc_tok = 0.0\nc_kv = 0.0\n[overhead]\nper_step = 0.0\n'
                    '[memory]\nmax_kv_tokens = -5\n')
    with pytest.raises(SpecscopeError, match=r"\[memory\] max_kv_tokens = -5 must be a positive integer"):
        read_cost_model(path)


def test_tensor_parallel_splits_weights_kv_and_adds_all_reduces():
    one = analytic_cost_model("llama-3.1-8b", "h100-sxm", tp=1).model.target
    four = analytic_cost_model("llama-3.1-8b", "h100-sxm", tp=4).model.target
    assert four.weight_bytes == one.weight_bytes / 4 and four.kv_bytes_per_token == one.kv_bytes_per_token / 4
    assert four.allreduce_bytes_per_token == 2 * 32 * 4096 * 2 * 2 * 3 / 4  # 2 per layer, ring 2(tp-1)/tp
    assert four.fixed_s == pytest.approx(2 * 32 * 5e-6)  # the spec's all-reduce latency
    assert one(1, 0) / 4 < four(1, 0) < one(1, 0)


@pytest.mark.parametrize("model, hardware, tp, message", [
    ("llama-3.1-70b", "h100-sxm", 3, "--tp 3 does not divide llama-3.1-70b's 64 attention heads and 8 KV heads; "
                                     "use --tp 1, 2, 4, 8"),
    ("qwen2.5-7b", "h100-sxm", 8, "does not divide qwen2.5-7b's 28 attention heads"),
    ("llama-3.1-8b", "h100-sxm", 16, "joins at most 8 devices"),
])
def test_tensor_parallel_errors(model, hardware, tp, message):
    with pytest.raises(SpecscopeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        analytic_cost_model(model, hardware, tp=tp)


def test_kv_heads_are_replicated_when_tp_exceeds_them():
    from dataclasses import replace

    from specscope.costs.hardware import load_hardware
    from specscope.costs.shapes import load_shape

    wide = replace(load_hardware("h100-sxm"), max_devices=16)
    shape = load_shape("llama-3.2-1b")  # 32 heads, 8 KV heads
    target = analytic_cost_model(shape, wide, tp=16).model.target
    assert target.kv_bytes_per_token == 2 * 16 * 1 * 64 * 2  # one KV head per device


def test_drafts_map_proposer_names_to_shapes():
    built = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4, drafts=["ngram", "draft=llama-3.2-1b", "eagle=eagle3"])
    assert set(built.model.drafts) == {"ngram", "draft", "eagle"}
    assert built.model.drafts["ngram"].scales_verify
    assert built.drafts["eagle"].name == "eagle3-llama-3.3-70b"  # the published head
    assert built.model.drafts["draft"].passes == 3
    default = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4)
    assert set(default.model.drafts) == {"ngram", "eagle", "eagle3", "mtp", "draft"}
    with pytest.raises(SpecscopeError, match="proposer 'draft' is given twice"):
        analytic_cost_model("llama-3.1-8b", "h100-sxm", drafts=["llama-3.2-1b", "draft=qwen3-0.6b"])
