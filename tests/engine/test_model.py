"""DecoderModel: ragged chunks, prefill/decode, rewind, layer truncation; the real model vs transformers."""

import pytest
import torch

from specscope.engine.model import random_model, tiny_config
from specscope.errors import SpecscopeError


def _tokens(n, seed=0, vocab=512):
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


def _full(model, tokens, **kw):
    cache = model.new_cache(1, 128, num_layers=kw.get("num_layers"))
    return model.forward_chunks(cache, [0], [tokens], **kw)


def test_output_shapes(tiny_model):
    out = tiny_model.forward_chunks(tiny_model.new_cache(2, 32), [0, 1], [_tokens(5), [1, 2]], hidden_layers=[0, 2])
    assert [t.shape for t in out.logits] == [(5, 512), (2, 512)]
    assert [t.shape for t in out.hidden] == [(5, 64), (2, 64)]
    assert sorted(out.layer_hidden) == [0, 2] and out.layer_hidden[0][1].shape == (2, 64)
    assert out.logits[0].dtype == torch.float32


def test_ragged_batch_equals_one_at_a_time(tiny_model):
    """Prefill of a new prompt and decode chunks of other sequences in one call, slots out of order."""
    histories = {0: _tokens(9, 1), 3: _tokens(4, 2), 1: _tokens(6, 3)}
    news = {0: _tokens(3, 4), 3: _tokens(1, 5), 1: _tokens(5, 6), 2: _tokens(11, 7)}  # slot 2: a fresh prompt
    cache = tiny_model.new_cache(4, 64)
    for slot, hist in histories.items():
        tiny_model.forward_chunks(cache, [slot], [hist])
        cache.set_length(slot, len(hist))
    slots = [3, 2, 0, 1]
    out = tiny_model.forward_chunks(cache, slots, [news[s] for s in slots])
    for i, slot in enumerate(slots):
        alone = torch.cat([histories.get(slot, torch.empty(0, dtype=torch.long)), news[slot]])
        ref = _full(tiny_model, alone).logits[0][-len(news[slot]) :]
        torch.testing.assert_close(out.logits[i], ref, rtol=1e-5, atol=1e-4)


def test_prefill_then_decode_equals_full_forward(tiny_model):
    tokens = _tokens(20, 8)
    ref = _full(tiny_model, tokens).logits[0]
    cache = tiny_model.new_cache(1, 64)
    pieces, start = [], 0
    for n in (8, 1, 1, 4, 1, 5):
        pieces.append(tiny_model.forward_chunks(cache, [0], [tokens[start : start + n]]).logits[0])
        start += n
        cache.set_length(0, start)
    torch.testing.assert_close(torch.cat(pieces), ref, rtol=1e-5, atol=1e-4)


def test_rewind_and_reforward_is_identical(tiny_model):
    tokens = _tokens(12, 9)
    cache = tiny_model.new_cache(1, 64)
    tiny_model.forward_chunks(cache, [0], [tokens[:8]])
    cache.set_length(0, 8)
    first = tiny_model.forward_chunks(cache, [0], [tokens[8:]]).logits[0]
    tiny_model.forward_chunks(cache, [0], [_tokens(4, 10)])  # other drafts at the same positions
    cache.set_length(0, 12)
    cache.set_length(0, 8)  # rewind
    again = tiny_model.forward_chunks(cache, [0], [tokens[8:]]).logits[0]
    assert torch.equal(first, again)


def test_num_logits_keeps_last_rows(tiny_model):
    out = tiny_model.forward_chunks(tiny_model.new_cache(2, 32), [0, 1], [_tokens(6, 1), _tokens(3, 2)], num_logits=[1, None])
    ref = tiny_model.forward_chunks(tiny_model.new_cache(2, 32), [0, 1], [_tokens(6, 1), _tokens(3, 2)])
    assert out.logits[0].shape == (1, 512) and out.logits[1].shape == (3, 512)
    torch.testing.assert_close(out.logits[0], ref.logits[0][-1:], rtol=1e-5, atol=1e-4)


def test_layer_truncated_forward_uses_first_layers(tiny_model):
    tokens = _tokens(10, 11)
    full = _full(tiny_model, tokens, hidden_layers=[1])
    short = _full(tiny_model, tokens, num_layers=2)
    expect = tiny_model.lm_head(tiny_model.norm(full.layer_hidden[1][0]))
    torch.testing.assert_close(short.logits[0], expect, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError):
        tiny_model.forward_chunks(tiny_model.new_cache(1, 16), [0], [tokens], num_layers=2)  # cache has 3 layers


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_other_architectures_run_and_stay_consistent(arch):
    model = random_model(tiny_config(arch=arch, tie_word_embeddings=True), seed=1)
    tokens = _tokens(10, 12)
    ref = _full(model, tokens).logits[0]
    cache = model.new_cache(1, 32)
    model.forward_chunks(cache, [0], [tokens[:6]])
    cache.set_length(0, 6)
    torch.testing.assert_close(model.forward_chunks(cache, [0], [tokens[6:]]).logits[0], ref[6:], rtol=1e-5, atol=1e-4)


def test_cache_overflow_is_a_user_error(tiny_model):
    with pytest.raises(SpecscopeError, match="KV cache holds 8"):
        tiny_model.forward_chunks(tiny_model.new_cache(1, 8), [0], [_tokens(9)])


def test_weight_nbytes_counts_tied_once():
    tied = random_model(tiny_config(tie_word_embeddings=True))
    untied = random_model(tiny_config(tie_word_embeddings=False))
    assert untied.weight_nbytes() - tied.weight_nbytes() == 512 * 64 * 4


# --- the real default model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_hf():
    """transformers' own implementation of the default GGUF checkpoint (dequantised to fp32)."""
    from transformers import AutoModelForCausalLM

    from specscope.engine.loading import default_model_path

    path = default_model_path()
    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


def _chat_ids(tokenizer, text):
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
    return list(ids if isinstance(ids, list) else ids["input_ids"])


@pytest.mark.slow
def test_default_model_logits_match_transformers(default_model_and_tokenizer, reference_hf):
    model, tokenizer = default_model_and_tokenizer
    ids = _chat_ids(tokenizer, "What is the capital of France? Answer in one word.")
    with torch.no_grad():
        ref = reference_hf(torch.tensor([ids])).logits[0]
    ours = model.forward_chunks(model.new_cache(1, 128), [0], [ids]).logits[0]
    assert (ours - ref).abs().max().item() < 1e-3
    assert torch.equal(ours.argmax(-1), ref.argmax(-1))


@pytest.mark.slow
def test_default_model_chunked_greedy_equals_token_by_token(default_model_and_tokenizer):
    """SD's premise: verifying k+1 tokens in one chunk picks the same greedy tokens as decoding one at a time."""
    model, tokenizer = default_model_and_tokenizer
    prompts = ["Write a haiku about the sea.", "List three prime numbers.", "def fibonacci(n):"]
    cache = model.new_cache(len(prompts), 128)
    gen = {}
    for slot, text in enumerate(prompts):  # plain greedy decoding, chunks of 1
        ids = _chat_ids(tokenizer, text)
        out = model.forward_chunks(cache, [slot], [ids], num_logits=[1]).logits[0][-1]
        cache.set_length(slot, len(ids))
        seq = ids + [int(out.argmax())]
        for _ in range(15):
            out = model.forward_chunks(cache, [slot], [seq[-1:]]).logits[0][-1]
            cache.set_length(slot, len(seq))
            seq.append(int(out.argmax()))
        gen[slot] = (len(ids), seq)
    verify = model.new_cache(len(prompts), 128)
    for slot, (n_prompt, seq) in gen.items():  # re-run: prompt minus its last token, then chunks of 1 + k = 5
        model.forward_chunks(verify, [slot], [seq[: n_prompt - 1]])
        verify.set_length(slot, n_prompt - 1)
    for start in range(0, 15, 5):  # each chunk: the last committed token + 4 "drafts", all sequences in one batch
        slots = list(gen)
        first = {s: gen[s][0] - 1 + start for s in slots}
        out = model.forward_chunks(verify, slots, [gen[s][1][first[s] : first[s] + 5] for s in slots])
        for slot, logits in zip(slots, out.logits):
            assert logits.argmax(-1).tolist() == gen[slot][1][first[slot] + 1 : first[slot] + 6]
            verify.set_length(slot, first[slot] + 5)
