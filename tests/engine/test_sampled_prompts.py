"""User requests sampled from the target itself (`specscope/engine/heads/sampled_prompts.py`)."""

import pytest

from specscope.errors import SpecscopeError
from specscope.engine.heads.sampled_prompts import clean_turn, sample_user_prompts, user_turn_prefix

TEMPLATE = "{% for m in messages %}w5 w6 {{ m['content'] }} w7 {% endfor %}{% if add_generation_prompt %}w8{% endif %}"


@pytest.fixture(scope="module")
def tiny_chat():
    """A tiny random model and a word-level tokenizer with a chat template (`w5 w6` opens a turn)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from specscope.engine.model import random_model, tiny_config

    config = tiny_config()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, config.vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = TEMPLATE
    return random_model(config, seed=0), tokenizer


def test_the_user_turn_opens_where_the_template_puts_the_message(tiny_chat):
    assert user_turn_prefix(tiny_chat[1]) == "w5 w6 "


def test_a_tokenizer_without_a_chat_template_is_refused(word_tokenizer):
    with pytest.raises(SpecscopeError, match="no chat template"):
        user_turn_prefix(word_tokenizer)


@pytest.mark.parametrize("text,kept", [
    ("  How do I bake bread at home?  ", "How do I bake bread at home?"),
    ("Hi there", None),  # too short
    ("Tell me a story <|im_start|>assistant", None),  # template markup leaked into the turn
])
def test_clean_turn(text, kept):
    assert clean_turn(text, min_words=4) == kept


def test_sampled_prompts_are_complete_distinct_and_reproducible(tiny_chat):
    model, tokenizer = tiny_chat
    rounds = []
    prompts = sample_user_prompts(model, tokenizer, 5, [2], seed=3, batch_size=16, max_tokens=64, min_words=1,
                                  on_round=rounds.append)
    assert len(prompts) == 5 and rounds[-1] == 5
    assert [p.id for p in prompts] == [f"sampled-3-{n:05d}" for n in range(5)]
    texts = [p.messages[0]["content"] for p in prompts]
    assert len({t.lower() for t in texts}) == 5
    assert all(p.workload == "chat" and p.source == "sampled" and p.messages[0]["role"] == "user" for p in prompts)
    assert all(w.startswith("w") for t in texts for w in t.split())
    again = sample_user_prompts(model, tokenizer, 5, [2], seed=3, batch_size=16, max_tokens=64, min_words=1)
    assert [p.messages for p in again] == [p.messages for p in prompts]
    other = sample_user_prompts(model, tokenizer, 5, [2], seed=4, batch_size=16, max_tokens=64, min_words=1)
    assert [p.messages for p in other] != [p.messages for p in prompts]


def test_a_model_that_never_ends_its_turn_gives_fewer_prompts_not_a_hang(tiny_chat):
    model, tokenizer = tiny_chat
    assert sample_user_prompts(model, tokenizer, 3, [2], batch_size=4, max_tokens=1, min_words=2) == []


def test_the_default_model_writes_real_requests():
    from specscope.engine.loading import load_model

    from specscope.study.engine_backend import stop_token_ids

    model, tokenizer = load_model(None)
    prompts = sample_user_prompts(model, tokenizer, 3, stop_token_ids(model, tokenizer), seed=0, batch_size=8,
                                  max_tokens=48)
    assert len(prompts) == 3
    for p in prompts:
        text = p.messages[0]["content"]
        assert len(text.split()) >= 4 and sum(c.isalpha() for c in text) > len(text) / 2, text
