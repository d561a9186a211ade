"""Shared fixtures for the workload tests: the real default tokenizer (loaded once), a tiny
whitespace tokenizer for fast rendering checks, and a helper that writes prompt files."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def real_tokenizer():
    """The embedded SmolLM2-135M-Instruct tokenizer with its chat template (~15 s, once per session)."""
    from specscope.engine.loading import load_tokenizer

    return load_tokenizer()


class WordTokenizer:
    """A test double with the slice of the Hugging Face tokenizer API that `render.py` uses.

    One id per whitespace-separated word; `[BOS]` is id 1 when special tokens are requested. With
    `chat_template` set it renders turns as `<role> content` lines plus an assistant cue.
    """

    def __init__(self, chat_template=None):
        self.chat_template = chat_template
        self.vocab = {"[BOS]": 1}

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
        text = "\n".join(f"<{m['role']}> {m['content']}" for m in messages)
        return text + ("\n<assistant>" if add_generation_prompt else "")

    def __call__(self, text, add_special_tokens=True):
        words = (["[BOS]"] if add_special_tokens else []) + text.split()
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab) + 1) for w in words]}


@pytest.fixture
def word_tokenizer():
    return WordTokenizer()


@pytest.fixture
def write_jsonl(tmp_path):
    """Write rows as JSONL into tmp_path and return the path."""

    def write(rows, name="prompts.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path

    return write
