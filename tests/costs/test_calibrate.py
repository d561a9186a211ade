"""Calibration recovers known constants, and the shipped GPU efficiencies are what the preset calibrates to."""

import numpy as np
import pytest

from specscope.costs.calibrate import calibrate, calibrate_against
from specscope.costs.efficiency import efficiencies_for
from specscope.costs.hardware import load_hardware
from specscope.costs.pricing import roofline
from specscope.costs.shapes import PRECISIONS, load_shape


def test_recovers_the_constants_that_made_the_data():
    shape, hw = load_shape("llama-3.1-8b"), load_hardware("a100-80gb")
    truth = efficiencies_for(hw)
    from dataclasses import replace

    truth = replace(truth, weight_bandwidth=0.7, kv_bandwidth=0.85, compute=0.6, overlap=0.4, layer_latency_s=0.0)
    form = roofline(shape, hw, PRECISIONS["bf16"], truth)
    n, kv = np.meshgrid(np.geomspace(1, 4096, 15), [0, 4096, 65536, 262144])
    cal = calibrate(shape, hw, PRECISIONS["bf16"], n.ravel(), kv.ravel(), form(n.ravel(), kv.ravel()),
                    hold={"layer_latency_s": 0.0})
    assert cal.overlap == pytest.approx(0.4)
    assert (cal.weight_bandwidth, cal.kv_bandwidth, cal.compute) == pytest.approx((0.7, 0.85, 0.6), rel=1e-6)
    assert cal.mean_relative_error < 1e-9


def test_the_shipped_gpu_efficiencies_are_the_preset_calibration():
    shape, hw = load_shape("llama-3.1-8b"), load_hardware("h100-sxm")
    result = calibrate_against(shape, hw, "llama3.1-8b-h100")
    stored = efficiencies_for(hw)
    assert result.calibration.mean_relative_error < 1e-9 and result.calibration.overlap == 0.0
    for key in ("weight_bandwidth", "kv_bandwidth", "compute", "step_overhead_s", "ngram_fraction"):
        assert getattr(result.efficiencies, key) == pytest.approx(getattr(stored, key), rel=1e-4), key
    assert result.calibration.by_overlap[1.0] > 0.05  # the max() form cannot follow the additive preset


def test_the_shipped_cpu_efficiencies_are_the_reference_profile_calibration():
    loading = pytest.importorskip("specscope.engine.loading")
    pytest.importorskip("gguf")
    from specscope.errors import SpecscopeError

    try:
        shape = load_shape(loading.default_model_path())
    except SpecscopeError:
        pytest.skip("the default model is not installed")
    hw = load_hardware("reference-cpu")
    result = calibrate_against(shape, hw, "smollm2-135m-cpu")
    stored = efficiencies_for(hw)
    for key in ("weight_bandwidth", "kv_bandwidth", "compute", "step_overhead_s", "ngram_fraction"):
        assert getattr(result.efficiencies, key) == pytest.approx(getattr(stored, key), rel=1e-4), key
