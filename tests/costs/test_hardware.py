"""Hardware specs: the shipped datasheets load; a user's file with a zero or negative figure is one clear line."""

import pytest

from specscope.costs.hardware import available_hardware, load_hardware
from specscope.errors import SpecscopeError

EXPECTED = {"h100-sxm", "h100-pcie", "h200", "a100-40gb", "a100-80gb", "l40s", "l4", "b200", "mi300x"}

GOOD = """
name = "mine"
kind = "gpu"
memory_gb = 24
bandwidth_gbs = 300
[flops_tflops]
bf16 = 121
"""


def test_every_shipped_spec_loads_with_its_datasheet():
    assert EXPECTED <= set(available_hardware())
    for name in available_hardware():
        spec = load_hardware(name)
        assert spec.memory_bytes > 1e9 and spec.provenance["source"]
        if spec.kind == "gpu":
            assert spec.bandwidth > 1e11 and spec.flops["bf16"] > 1e13 and "datasheet" in spec.provenance["source"]
        else:  # the reference CPU the cpu efficiencies were calibrated on: a probe's figures
            assert spec.flops["fp32"] > 1e10 and "specscope probe" in spec.provenance["source"]


def test_h100_sxm_figures():
    spec = load_hardware("h100-sxm")
    assert (spec.memory_bytes, spec.bandwidth, spec.flops["bf16"]) == (80e9, 3.35e12, 989.4e12)
    assert spec.link_bandwidth == 450e9 and spec.max_devices == 8


def test_a_user_file_loads(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    spec = load_hardware(path)
    assert spec.name == "mine" and spec.link_bandwidth == 0 and spec.max_devices == 1


@pytest.mark.parametrize("old, new, message", [
    ("bandwidth_gbs = 300", "bandwidth_gbs = 0", "bandwidth_gbs = 0 must be > 0"),
    ("memory_gb = 24", "memory_gb = -24", "memory_gb = -24 must be > 0"),
    ("bf16 = 121", "bf16 = 0", "[flops_tflops] bf16 = 0 must be > 0"),
    ("bf16 = 121", "bf16 = \"fast\"", "bf16 = 'fast' is not a finite number"),
    ("kind = \"gpu\"", "kind = \"tpu\"", "kind = 'tpu'; use one of gpu, cpu"),
])
def test_bad_figures_are_one_line_errors(tmp_path, old, new, message):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(SpecscopeError) as err:
        load_hardware(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_unknown_hardware_lists_the_known_ones_and_local():
    with pytest.raises(SpecscopeError, match=r"Unknown hardware 'h900'. Available: a100-40gb, .*local"):
        load_hardware("h900")
