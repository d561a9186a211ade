"""KVCache bookkeeping: slots, commit/rewind, byte counts; rejected drafts cost nothing."""

import pytest
import torch

from specscope.engine.kv_cache import KVCache


def test_shapes_lengths_and_nbytes():
    cache = KVCache(num_layers=3, num_slots=4, max_len=32, num_kv_heads=2, head_dim=8)
    assert cache.k.shape == (3, 4, 2, 32, 8) and cache.v.shape == cache.k.shape
    assert cache.lengths.tolist() == [0, 0, 0, 0] and cache.lengths.device.type == "cpu"
    assert cache.nbytes() == 2 * 3 * 4 * 2 * 32 * 8 * 4
    half = KVCache(3, 4, 32, 2, 8, dtype=torch.bfloat16)
    assert half.nbytes() == cache.nbytes() // 2


def test_set_length_commit_rewind_reset():
    cache = KVCache(2, 3, 16, 1, 4)
    cache.set_length(1, 10)
    assert cache.length(1) == 10 and cache.lengths.tolist() == [0, 10, 0]
    cache.set_length(1, 4)  # rewind
    assert cache.length(1) == 4
    cache.reset(1)
    assert cache.length(1) == 0
    with pytest.raises(ValueError):
        cache.set_length(0, 17)
    with pytest.raises(IndexError):
        cache.set_length(3, 1)


def test_rejected_drafts_are_overwritten(tiny_model):
    """Verify 1 + k tokens, accept only part, continue: same logits as if the rejects never happened."""
    g = torch.Generator().manual_seed(3)
    prompt, drafts, truth = (torch.randint(0, 512, (n,), generator=g) for n in (7, 4, 3))
    ref_cache = tiny_model.new_cache(1, 64)
    full = torch.cat([prompt, drafts[:2], truth])
    ref = tiny_model.forward_chunks(ref_cache, [0], [full]).logits[0]

    cache = tiny_model.new_cache(1, 64)
    tiny_model.forward_chunks(cache, [0], [prompt])
    cache.set_length(0, 7)
    tiny_model.forward_chunks(cache, [0], [drafts])  # 4 drafts written ...
    cache.set_length(0, 9)  # ... 2 accepted
    out = tiny_model.forward_chunks(cache, [0], [truth]).logits[0]
    torch.testing.assert_close(out, ref[9:], rtol=1e-5, atol=1e-4)


def test_cache_too_big_for_memory_is_one_clear_error():
    from specscope.engine.kv_cache import available_bytes
    from specscope.errors import SpecscopeError

    free = available_bytes("cpu")
    if free is None:
        pytest.skip("free memory is unknown on this system")
    slots = int(free // (2 * 4 * 1024 * 64)) + 1  # one layer, 1024 tokens, 64-dim fp32 keys + values per slot
    with pytest.raises(SpecscopeError, match="lower --batch-size"):
        KVCache(1, slots, 1024, 1, 64)
