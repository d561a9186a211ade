"""Memory fit: weights + KV cache + activations per device; what does not fit stops with one line saying by how much."""

import pytest

from specscope.costs.pricing import analytic_cost_model
from specscope.errors import SpecscopeError


def test_llama_70b_bf16_on_one_h100_is_refused_by_how_much():
    with pytest.raises(SpecscopeError) as err:
        analytic_cost_model("llama-3.1-70b", "h100-sxm", drafts=["ngram"])
    text = str(err.value)
    assert text.startswith("llama-3.1-70b bf16 on 1 x h100-sxm does not fit: weights 141.1 GB")
    assert "exceed the 72.0 GB usable (90% of 80 GB) by 70.5 GB" in text and "\n" not in text


def test_llama_70b_on_four_h100_fits_a_stated_batch_times_context():
    plan = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4, drafts=["ngram"]).memory
    assert plan.weights == pytest.approx(141.1e9 / 4, rel=1e-3)
    assert plan.kv_per_token == 80 * 2 * 128 * 2 * 2  # 2 of 8 KV heads per device
    assert plan.max_kv_tokens == int((72e9 - plan.weights - plan.activations) // plan.kv_per_token)
    assert 400_000 < plan.max_kv_tokens < 500_000
    assert dict(plan.examples())[8192] == plan.max_kv_tokens // 8192


def test_a_batch_and_context_that_do_not_fit_name_the_limit():
    analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4, drafts=["ngram"], batch=32, context=8192)  # fits
    with pytest.raises(SpecscopeError, match=r"does not fit batch 64 x context 32768: its KV cache of 2,097,152 tokens "
                                             r"needs .* GB per device, .* GB more than"):
        analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4, drafts=["ngram"], batch=64, context=32768)


def test_a_draft_model_takes_memory_too():
    alone = analytic_cost_model("llama-3.1-8b", "h100-sxm", drafts=["ngram"]).memory
    paired = analytic_cost_model("llama-3.1-8b", "h100-sxm", drafts=["ngram", "draft"]).memory
    assert paired.weights - alone.weights == pytest.approx(2 * 1.2358e9, rel=0.01)  # Llama-3.2-1B in bf16
    assert paired.max_kv_tokens < alone.max_kv_tokens


def test_fp8_and_q4_shrink_the_weights():
    bf16 = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=2, drafts=["ngram"]).memory
    fp8 = analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=2, precision="fp8", drafts=["ngram"]).memory
    q4 = analytic_cost_model("llama-3.1-70b", "h100-sxm", precision="q4", drafts=["ngram"]).memory  # one GPU
    assert fp8.weights == pytest.approx(bf16.weights / 2)
    assert q4.max_kv_tokens > 0
