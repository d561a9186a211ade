"""Prompts to token ids: through the model's own chat template, or as plain text for base models.

`chat=None` (the default) uses the chat template when the tokenizer has one and plain text when it
does not; `chat=True` insists on the template, `chat=False` forces plain text (`Prompt.text`).
"""

from __future__ import annotations

from typing import Optional, Sequence

from specscope.errors import SpecscopeError
from specscope.workloads.prompt import Prompt
from specscope.workloads.sampling import select_fitting


def has_chat_template(tokenizer) -> bool:
    """Whether the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def use_chat(tokenizer, chat: Optional[bool]) -> bool:
    """Resolve the `chat` setting against what the tokenizer offers."""
    if chat is None:
        return has_chat_template(tokenizer)
    if chat and not has_chat_template(tokenizer):
        raise SpecscopeError("this model's tokenizer has no chat template; use --plain to feed prompts as plain text")
    return chat


def render_text(prompt: Prompt, tokenizer, chat: Optional[bool] = None) -> str:
    """The exact text the model reads: the chat template applied (with the assistant cue), or plain text."""
    if use_chat(tokenizer, chat):
        return tokenizer.apply_chat_template(list(prompt.messages), add_generation_prompt=True, tokenize=False)
    return prompt.text


def render_prompt(prompt: Prompt, tokenizer, chat: Optional[bool] = None) -> list[int]:
    """Token ids of the prompt, ready for prefill.

    With the chat template the special tokens come from the template itself; plain text gets the
    tokenizer's usual special tokens (e.g. BOS).
    """
    chat = use_chat(tokenizer, chat)
    text = render_text(prompt, tokenizer, chat)
    return list(tokenizer(text, add_special_tokens=not chat)["input_ids"])


def render_fitting(
    prompts: Sequence[Prompt], tokenizer, context_len: int, chat: Optional[bool] = None, min_new_tokens: int = 1
) -> tuple[list[tuple[Prompt, list[int]]], int]:
    """Render every prompt and keep those that fit the context: `([(prompt, ids), ...], skipped_count)`."""
    chat = use_chat(tokenizer, chat)
    ids = [render_prompt(p, tokenizer, chat) for p in prompts]
    kept, skipped = select_fitting(ids, context_len, min_new_tokens)
    return [(prompts[i], ids[i]) for i in kept], skipped
