"""Loading: HF safetensors round-trips (ours and transformers agree), GGUF config, tokenizer cache, user errors."""

import json

import pytest
import torch

from specscope.engine.loading import _gguf_tokenizer_cache_dir, default_model_path, load_model, load_tokenizer, save_hf_folder
from specscope.engine.model import random_model, rope_inv_freq, tiny_config
from specscope.errors import SpecscopeError

ARCH_CONFIGS = {
    "llama": dict(arch="llama"),
    "llama-tied-llama3-rope": dict(
        arch="llama",
        tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64},
    ),
    "qwen2": dict(arch="qwen2"),
    "qwen3": dict(arch="qwen3", tie_word_embeddings=True),
}


@pytest.mark.parametrize("name", sorted(ARCH_CONFIGS))
def test_safetensors_round_trip_matches_ours_and_transformers(tmp_path, name):
    from transformers import AutoModelForCausalLM

    model = random_model(tiny_config(**ARCH_CONFIGS[name]), seed=4)
    folder = save_hf_folder(model, tmp_path / name)
    loaded, tokenizer = load_model(folder, tokenizer=False)
    assert tokenizer is None and loaded.config.arch == model.config.arch
    tokens = torch.randint(0, 512, (40,), generator=torch.Generator().manual_seed(5))
    ours = model.forward_chunks(model.new_cache(1, 64), [0], [tokens]).logits[0]
    again = loaded.forward_chunks(loaded.new_cache(1, 64), [0], [tokens]).logits[0]
    assert torch.equal(ours, again)
    hf = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf(tokens[None]).logits[0]
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-4)


def test_llama3_rope_scaling_changes_long_wavelengths_only():
    base = rope_inv_freq(tiny_config())
    scaled = rope_inv_freq(tiny_config(**ARCH_CONFIGS["llama-tied-llama3-rope"]))
    assert torch.equal(scaled[0], base[0])  # shortest wavelength untouched
    torch.testing.assert_close(scaled[-1], base[-1] / 8.0)  # longest divided by factor


def test_missing_path_is_a_user_error():
    with pytest.raises(SpecscopeError, match="does not exist"):
        load_model("/nonexistent/model.gguf")


def test_folder_without_config_is_a_user_error(tmp_path):
    with pytest.raises(SpecscopeError, match="config.json"):
        load_model(tmp_path)


def test_not_a_gguf_file_is_a_user_error(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(SpecscopeError, match="not a .gguf"):
        load_model(path)


def test_malformed_gguf_is_a_user_error(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x07" * 100)
    with pytest.raises(SpecscopeError, match="cannot read GGUF"):
        load_model(path)


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10}))
    with pytest.raises(SpecscopeError, match="unsupported architecture 'gpt2'; supported: llama, qwen2, qwen3"):
        load_model(tmp_path)


def test_folder_with_missing_tensor_is_a_user_error(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_hf_folder(random_model(tiny_config()), tmp_path / "m")
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(SpecscopeError, match="missing|only some"):
        load_model(folder, tokenizer=False)


@pytest.mark.slow
def test_default_model_config_and_cached_tokenizer(default_model_and_tokenizer):
    model, tokenizer = default_model_and_tokenizer
    c = model.config
    assert (c.arch, c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.vocab_size) == ("llama", 30, 576, 9, 3, 49152)
    assert c.tie_word_embeddings and c.max_position == 8192 and c.rope_theta == 100000.0
    assert c.eos_token_ids == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    cached = _gguf_tokenizer_cache_dir(default_model_path())  # the session fixture built and cached it
    assert (cached / "tokenizer.json").exists()
    again = load_tokenizer(None)  # from the cache: ordinary tokenizer files, no GGUF vocab parsing
    text = "Speculative decoding: draft, verify, accept."
    assert again.encode(text) == tokenizer.encode(text)
    chat = [{"role": "user", "content": "hi"}]
    assert again.apply_chat_template(chat, tokenize=False) == tokenizer.apply_chat_template(chat, tokenize=False)
    assert "<|im_start|>" in again.apply_chat_template(chat, tokenize=False)
