"""User requests written by the target model itself, for training draft heads on varied prompts offline.

    prompts = sample_user_prompts(target, tokenizer, 2000, stop_ids, seed=0)  # list[Prompt], ids `sampled-<seed>-<n>`

An instruction-tuned model has seen thousands of real user turns in its fine-tuning data. Opening a
user turn in its chat template (the template's own system prompt, then the user header) and sampling
(temperature 1, top-p 0.95) lets it write such turns back: questions, requests for advice, code to fix,
stories to write, in far more variety than templates (`synthetic.py`). A draft head trained on the
target's greedy answers to them generalises to prompts it never saw better than one trained on
templated prompts, whose answers look alike.

Only complete turns are kept (the model closed the turn with an end-of-turn token within
`max_tokens`), with at least `min_words` words, without chat-template markup, each text once.
"""

from __future__ import annotations

from typing import Callable

from specscope.errors import SpecscopeError
from specscope.workloads.prompt import Prompt
from specscope.workloads.registry import get_workload

_MARK = "\x00specscope-user-turn\x00"  # stands in for the user's text while the template is rendered


def user_turn_prefix(tokenizer) -> str:
    """The chat template's text up to where a user's message begins (system prompt included)."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise SpecscopeError("sampled prompts need a chat model: the target's tokenizer has no chat template; "
                             "give prompts with --prompts FILE or --synthetic N instead")
    text = tokenizer.apply_chat_template([{"role": "user", "content": _MARK}], tokenize=False,
                                         add_generation_prompt=False)
    cut = text.find(_MARK)
    if cut <= 0:
        raise SpecscopeError("sampled prompts: the chat template does not show where a user's message starts; "
                             "give prompts with --prompts FILE instead")
    return text[:cut]


def clean_turn(text: str, min_words: int) -> str | None:
    """The request in a sampled turn, or None when it is too short or carries template markup."""
    text = text.strip()
    if len(text.split()) < min_words or "<|" in text or "|>" in text or "[INST]" in text:
        return None
    return text


def sample_user_prompts(target, tokenizer, count: int, stop_ids, seed: int = 0, batch_size: int = 32,
                        max_tokens: int = 96, min_words: int = 4, temperature: float = 1.0, top_p: float = 0.95,
                        on_round: Callable[[int], None] | None = None) -> list[Prompt]:
    """`count` distinct user requests sampled from the target (chat workload shape; fewer if it keeps repeating).

    stop_ids: the target's end-of-turn / end-of-sequence token ids (a turn that ends with one is complete).
    """
    from specscope.engine.engine import Engine
    from specscope.settings import RunSettings
    from specscope.engine.scheduler import Request

    if count <= 0:
        return []
    prefix = tokenizer.encode(user_turn_prefix(tokenizer), add_special_tokens=False)
    stops = {int(t) for t in stop_ids}
    chat = get_workload("chat")
    texts: list[str] = []
    seen: set[str] = set()
    for round_index in range(8 * (count // batch_size + 1)):  # bounded: a model that repeats itself ends the loop
        settings = RunSettings(batch_size=batch_size, max_new_tokens=max_tokens, temperature=temperature,
                               top_p=top_p, seed=seed * 100_003 + round_index)
        engine = Engine.plain(target, settings, stop_token_ids=sorted(stops))
        requests = [Request(f"u{i}", list(prefix), max_tokens) for i in range(batch_size)]
        for seq in sorted(engine.generate(requests), key=lambda s: int(s.request.id[1:])):
            out = list(seq.output)
            if seq.error is not None or not out or out[-1] not in stops:
                continue  # unfinished turn
            text = clean_turn(tokenizer.decode(out[:-1], skip_special_tokens=True), min_words)
            if text is not None and text.lower() not in seen and len(texts) < count:
                seen.add(text.lower())
                texts.append(text)
        if on_round is not None:
            on_round(len(texts))
        if len(texts) >= count:
            break
    return [Prompt(id=f"sampled-{seed}-{n:05d}", workload="chat", messages=({"role": "user", "content": t},),
                   max_new_tokens=chat.max_new_tokens, is_reasoning=chat.is_reasoning, source="sampled")
            for n, t in enumerate(texts)]
