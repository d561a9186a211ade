"""Model shapes: the published shapes add up to the published parameter counts; configs, GGUF and names load."""

import json

import pytest

from specscope.costs.shapes import PRECISIONS, available_models, head_shape, load_shape, shipped_shape, shipped_tables
from specscope.errors import SpecscopeError

BF16 = PRECISIONS["bf16"]


def test_llama_3_1_8b_matches_the_preset_physics():
    shape = load_shape("llama-3.1-8b")
    assert shape.held_params() == pytest.approx(8.03e9, rel=0.002)  # the published 8.03 B
    assert shape.kv_bytes_per_token(BF16) == 32 * 8 * 128 * 2 * 2 == 131072  # the preset's c_kv x 3.35 TB/s
    assert shape.flops_per_token() == 2 * shape.read_params()
    assert shape.read_bytes(BF16) == 2 * shape.read_params()  # the embedding table is not read whole


@pytest.mark.parametrize("name, billions", [("llama-3.1-70b", 70.55), ("qwen2.5-72b", 72.7), ("qwen3-32b", 32.8),
                                           ("qwen3-8b", 8.19), ("qwen2.5-7b", 7.6), ("llama-3.2-1b", 1.24),
                                           ("smollm2-135m", 0.1348)])
def test_shipped_shapes_add_up_to_published_sizes(name, billions):
    assert shipped_shape(name).held_params() / 1e9 == pytest.approx(billions, rel=0.02)


def test_every_shipped_table_loads_and_heads_are_small():
    for name in shipped_tables():
        shape = shipped_shape(name)
        assert shape.read_params() > 0
        if shape.kind != "model":
            assert shape.num_layers == 1 and shape.held_params() < 0.08 * load_shape_base(name).held_params()


def load_shape_base(head_name):
    return shipped_shape(shipped_tables()[head_name]["base"])


def test_eagle3_head_counts_its_wide_attention_fusion_layer_and_draft_vocabulary():
    target = shipped_shape("llama-3.1-8b")
    head = head_shape(target, "eagle3")
    h, i = 4096, 14336
    layer = 2 * h * (32 + 16) * 128 + 32 * 128 * h + 3 * h * i
    assert head.read_params() == layer + 3 * h * h + 32000 * h
    assert head.kv_bytes_per_token(BF16) == 131072 / 32  # one layer's KV


def test_config_json_and_its_folder_load_like_the_shipped_name(tmp_path):
    table = shipped_tables()["qwen3-8b"]
    cfg = {k: v for k, v in table.items() if k not in ("draft", "eagle3", "hf_id", "source")}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for source in (tmp_path, tmp_path / "config.json"):
        shape = load_shape(source)
        assert shape.read_params() == shipped_shape("qwen3-8b").read_params()


def test_a_config_without_the_needed_fields_names_them(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4}))
    with pytest.raises(SpecscopeError, match="lacks intermediate_size, num_hidden_layers, vocab_size"):
        load_shape(path)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(SpecscopeError) as err:
        load_shape("llama-9-1t")
    assert "Unknown model 'llama-9-1t'. Available: " in str(err.value)
    assert all(name in str(err.value) for name in available_models())


def test_the_default_gguf_keeps_its_bits_as_stored():
    pytest.importorskip("gguf")
    loading = pytest.importorskip("specscope.engine.loading")
    try:
        path = loading.default_model_path()
    except SpecscopeError:
        pytest.skip("the default model is not installed")
    shape = load_shape(path)
    assert (shape.num_layers, shape.hidden_size, shape.num_kv_heads) == (30, 576, 3)
    assert shape.tie_word_embeddings
    assert shape.weight_bits == pytest.approx(5.0) and shape.head_bits == pytest.approx(8.5)  # Q4_1, Q8_0
    gguf = PRECISIONS["gguf"]
    assert shape.read_bytes(gguf) == pytest.approx(66_355_200 + 30_081_024, rel=1e-3)  # the file's weight bytes
    with pytest.raises(SpecscopeError, match="--dtype gguf"):
        shipped_shape("smollm2-135m").read_bytes(gguf)
