"""Rendering prompts to token ids: the real model's chat template, or plain text for base models."""

import pytest

from specscope.errors import SpecscopeError
from specscope.workloads import WORKLOADS, load_prompts
from specscope.workloads.prompt import Prompt
from specscope.workloads.render import render_fitting, render_prompt, render_text

from word_tokenizer import WordTokenizer


def make(content, n=1):
    return Prompt(id=f"p{n}", workload="chat", messages=({"role": "user", "content": content},), max_new_tokens=8)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_family_renders_through_the_default_chat_template(real_tokenizer, name):
    for prompt in load_prompts(name):
        ids = render_prompt(prompt, real_tokenizer)
        text = render_text(prompt, real_tokenizer)
        assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
        assert prompt.messages[-1]["content"] in text
        assert ids == real_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert real_tokenizer.decode(ids) == text
        assert len(ids) < 2048  # small enough for a 135M model on CPU


@pytest.mark.slow
def test_multi_turn_chat_keeps_every_turn(real_tokenizer):
    prompt = next(p for p in load_prompts("chat") if len(p.messages) > 1)
    text = render_text(prompt, real_tokenizer)
    assert text.count("<|im_start|>user\n") == 2 and text.count("<|im_start|>assistant\n") == 2


@pytest.mark.slow
def test_plain_mode_with_the_real_tokenizer(real_tokenizer):
    prompt = load_prompts("math", num_prompts=1)[0]
    ids = render_prompt(prompt, real_tokenizer, chat=False)
    assert real_tokenizer.decode(ids) == prompt.text


def test_no_template_falls_back_to_plain_text_with_special_tokens():
    tok = WordTokenizer(chat_template=None)
    prompt = make("two words")
    assert render_text(prompt, tok) == "two words"
    assert render_prompt(prompt, tok) == [1, 2, 3]


def test_template_is_used_when_present_and_plain_can_be_forced():
    tok = WordTokenizer(chat_template="{{ messages }}")
    prompt = make("hi")
    assert render_text(prompt, tok) == "<user> hi\n<assistant>"
    assert render_prompt(prompt, tok)[0] != 1  # the template brings its own markers, no BOS added
    assert render_text(prompt, tok, chat=False) == "hi"


def test_chat_demanded_without_template():
    with pytest.raises(SpecscopeError, match="no chat template; use --plain"):
        render_prompt(make("hi"), WordTokenizer(), chat=True)


def test_render_fitting_skips_long_prompts_and_counts_them():
    prompts = [make("a b", 1), make(" ".join(["w"] * 50), 2), make("c", 3)]
    kept, skipped = render_fitting(prompts, WordTokenizer(), context_len=10)
    assert [p.id for p, _ in kept] == ["p1", "p3"]
    assert [len(ids) for _, ids in kept] == [3, 2]
    assert skipped == 1
