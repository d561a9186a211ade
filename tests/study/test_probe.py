"""The local probe: positive rates, a hardware spec the cost model accepts, the threads it used."""

import pytest

pytest.importorskip("torch")

from specscope.costs.pricing import analytic_cost_model  # noqa: E402
from specscope.costs.shapes import load_shape  # noqa: E402
from specscope.study.probe import copy_bandwidth, matmul_flops, probe_cpu  # noqa: E402


def test_rates_are_positive_and_finite():
    assert 1e8 < copy_bandwidth(8 * 2**20, reps=2) < 1e13
    assert 1e7 < matmul_flops(128, reps=2) < 1e14


def test_the_probe_is_a_cpu_spec_that_prices_a_model():
    spec = probe_cpu(threads=1, copy_bytes=8 * 2**20, matmul_n=128, reps=2)
    assert spec.kind == "cpu" and spec.provenance["threads"] == 1 and set(spec.flops) == {"fp32"}
    built = analytic_cost_model(load_shape("smollm2-135m"), spec, drafts=["ngram"])
    assert built.model.target(1, 0) > 0 and built.model.max_kv_tokens > 0
    assert "f32" in built.model.description  # no GGUF: the CPU engine's float32


def test_bad_threads_is_one_line():
    from specscope.errors import SpecscopeError

    with pytest.raises(SpecscopeError, match="--threads 0"):
        probe_cpu(threads=0)
