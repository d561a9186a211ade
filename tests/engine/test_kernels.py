"""CPU kernels: GGUF block formats, quantised linear, norm, activation and attention.

Each kernel is checked against a plain-torch reference, and for the property speculative decoding
needs: a row's result is bit-identical whatever else shares the call (rows, chunking, threads).
"""

import numpy as np
import pytest
import torch

from specscope.engine.kernels.build import cpu_kernels_available

pytestmark = pytest.mark.skipif(not cpu_kernels_available(), reason="CPU kernels unavailable (needs x86-64 AVX2 + C++ compiler)")

from specscope.engine.kernels.ggml import Q4_0, Q4_1, Q8_0, GGMLLinear, dequantize_rows, quantize_rows  # noqa: E402

QTYPES = [Q4_0, Q4_1, Q8_0]


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("qtype", QTYPES)
def test_dequantize_matches_gguf_reference_bit_for_bit(qtype):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    blocks = quantize_rows(_randn(7, 96), qtype)
    ours = dequantize_rows(blocks, qtype)
    ref = dequantize(blocks.numpy(), GGMLQuantizationType(qtype)).reshape(7, 96)
    assert torch.equal(ours, torch.from_numpy(np.ascontiguousarray(ref)))


@pytest.mark.parametrize("qtype", QTYPES)
def test_quantize_round_trip_error_is_small(qtype):
    w = _randn(16, 64, seed=1)
    err = (dequantize_rows(quantize_rows(w, qtype), qtype) - w).abs().max()
    assert err < {Q4_0: 0.5, Q4_1: 0.3, Q8_0: 0.02}[qtype]


@pytest.mark.parametrize("qtype", QTYPES)
@pytest.mark.parametrize("n_out", [1, 7, 50, 101])
def test_ggml_linear_matches_dequantised_matmul_and_is_row_invariant(qtype, n_out):
    K = 96
    lin = GGMLLinear(quantize_rows(_randn(n_out, K, seed=2), qtype), qtype, K)
    w = lin.dequantize().double()
    x = _randn(70, K, seed=3)
    y = lin(x)
    torch.testing.assert_close(y.double(), x.double() @ w.T, rtol=1e-5, atol=1e-4)
    for rows in ([0], [5], [2, 9], [1, 4, 6], [0, 1, 2, 3], [3, 4, 5, 6, 7], list(range(16, 33))):
        assert torch.equal(lin(x[rows].contiguous()), y[rows])  # GEMV, small-batch path (2-4 rows), GEMM tiles


@pytest.mark.parametrize("qtype", QTYPES)
@pytest.mark.parametrize("n_out, K", [(1, 32), (7, 64), (13, 96), (50, 576), (101, 160)])
def test_small_batch_path_matches_reference_gemv_and_tiled_gemm(qtype, n_out, K):
    """2-4 rows (a verification step of k = 1..3 drafts): the float reference, and bit for bit the
    1-row GEMV of each row and the tiled GEMM path (small_m = 0) the kernel used before."""
    from specscope.engine.kernels.build import cpu_ops

    ops = cpu_ops()
    blocks = quantize_rows(_randn(n_out, K, seed=10 + K), qtype)
    w = dequantize_rows(blocks, qtype).double()
    for m in (2, 3, 4):
        x = _randn(m, K, seed=20 + m) * 2
        y = ops.ggml_linear(x, blocks, qtype, n_out)  # small-batch path (the default)
        torch.testing.assert_close(y.double(), x.double() @ w.T, rtol=1e-5, atol=1e-4)
        assert torch.equal(y, ops.ggml_linear(x, blocks, qtype, n_out, 0))  # tiled GEMM path
        assert torch.equal(y, torch.cat([ops.ggml_linear(x[i : i + 1].contiguous(), blocks, qtype, n_out) for i in range(m)]))


def test_small_batch_rows_setting_selects_the_path_not_the_result():
    lin = GGMLLinear(quantize_rows(_randn(40, 96, seed=11), Q4_1), Q4_1, 96)
    x = _randn(3, 96, seed=12)
    new = lin(x)
    try:
        GGMLLinear.small_batch_rows = 0
        old = lin(x)
    finally:
        GGMLLinear.small_batch_rows = 4
    assert torch.equal(new, old)


def test_ggml_linear_bias_and_batch_dims():
    lin = GGMLLinear(quantize_rows(_randn(10, 64), Q8_0), Q8_0, 64, bias=_randn(10, seed=4))
    x = _randn(2, 3, 64, seed=5)
    ref = x @ lin.dequantize().T + lin.bias
    torch.testing.assert_close(lin(x), ref, rtol=1e-5, atol=1e-5)


def test_thread_count_does_not_change_results():
    lin = GGMLLinear(quantize_rows(_randn(300, 128), Q4_1), Q4_1, 128)
    x = _randn(9, 128, seed=6)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [lin(x)] + [lin(x[:m].contiguous()) for m in (1, 2, 3, 4)]
        torch.set_num_threads(2)
        two = [lin(x)] + [lin(x[:m].contiguous()) for m in (1, 2, 3, 4)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_norm_and_activation_match_torch():
    from specscope.engine.kernels.ops import cpu_kernel_ops
    from specscope.engine.model import TORCH_OPS

    ops = cpu_kernel_ops(required=True)
    x, w = _randn(5, 64, seed=7) * 3, _randn(64, seed=8)
    torch.testing.assert_close(ops.rms_norm(x, w, 1e-6), TORCH_OPS.rms_norm(x, w, 1e-6), rtol=1e-5, atol=1e-5)
    assert torch.equal(ops.rms_norm(x[2:3], w, 1e-6), ops.rms_norm(x, w, 1e-6)[2:3])
    gu = _randn(4, 96, seed=9) * 4
    torch.testing.assert_close(ops.silu_mul(gu), TORCH_OPS.silu_mul(gu), rtol=1e-5, atol=1e-5)


def _quantise_model(model, qtype):
    """Swap a random model's linear layers for GGMLLinear (tests the kernels end to end)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear):
            model.set_submodule(name, GGMLLinear(quantize_rows(module.weight, qtype), qtype, module.in_features, module.bias))
    return model


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
def test_kernel_ops_match_torch_ops_on_a_model(arch):
    from specscope.engine.model import random_model, tiny_config

    model = random_model(tiny_config(arch=arch), seed=3)
    tokens = torch.randint(0, 512, (30,), generator=torch.Generator().manual_seed(1))
    out = {}
    for kernels in ("torch", "cpu"):
        model.kernels = kernels
        cache = model.new_cache(3, 64)
        first = model.forward_chunks(cache, [1], [tokens[:20]]).logits[0]
        cache.set_length(1, 20)
        rest = model.forward_chunks(cache, [2, 1], [tokens[:7], tokens[20:]]).logits
        out[kernels] = torch.cat([first, rest[1], rest[0]])
    torch.testing.assert_close(out["cpu"], out["torch"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("qtype", [Q4_1, Q8_0])
def test_quantised_model_logits_do_not_depend_on_chunking(qtype):
    """Token by token, in chunks of 4 alongside another sequence, or all at once: identical bits."""
    from specscope.engine.model import random_model, tiny_config

    model = _quantise_model(random_model(tiny_config(hidden_size=128, head_dim=32, intermediate_size=256)), qtype)
    model.kernels = "cpu"
    tokens = torch.randint(0, 512, (13,), generator=torch.Generator().manual_seed(2))
    whole = model.forward_chunks(model.new_cache(1, 32), [0], [tokens]).logits[0]
    cache, singles = model.new_cache(1, 32), []
    for i in range(13):
        singles.append(model.forward_chunks(cache, [0], [tokens[i : i + 1]]).logits[0])
        cache.set_length(0, i + 1)
    cache, chunked = model.new_cache(2, 32), []
    for start in range(0, 13, 4):
        piece = tokens[start : start + 4]
        out = model.forward_chunks(cache, [1, 0], [tokens[:3], piece]).logits[1]  # slot 1 re-prefills each time
        chunked.append(out)
        cache.set_length(0, start + len(piece))
    assert torch.equal(torch.cat(singles), whole)
    assert torch.equal(torch.cat(chunked), whole)


def test_a_build_killed_half_way_does_not_block_later_loads():
    """torch's build baton (`lock`) left by a killed build: the next load removes it instead of waiting forever."""
    import subprocess
    import sys

    from specscope.engine.kernels.build import build_folder

    (build_folder() / "lock").touch()
    code = "from specscope.engine.kernels.build import cpu_ops; cpu_ops(); print('loaded')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "loaded", done.stderr
    assert not (build_folder() / "lock").exists()
