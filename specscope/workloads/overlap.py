"""Prompt–output overlap: BLEU-4 of a request's output against its prompt.

High overlap means the output copies from the prompt, where n-gram drafting shines: the study
found n-gram beats EAGLE once this BLEU-4 exceeds about 0.6.

Definition (sacrebleu `sentence_bleu`): the output is the hypothesis and the prompt's plain text
(`Prompt.text`, without chat-template markup) the single reference; tokenisation `13a` (the
standard mteval tokeniser), case-sensitive, smoothing `exp` with effective order (sacrebleu's
sentence-level defaults), brevity penalty included, rescaled from 0–100 to 0–1. Identical texts
score 1, texts with no word in common 0, and an empty output 0.
"""

from __future__ import annotations

import functools

from specscope.errors import SpecscopeError


def bleu4_overlap(prompt_text: str, output_text: str) -> float:
    """BLEU-4 in [0, 1] of `output_text` (hypothesis) against `prompt_text` (reference)."""
    if not output_text.strip() or not prompt_text.strip():
        return 0.0
    score = _metric().sentence_score(output_text, [prompt_text]).score
    return min(1.0, max(0.0, score / 100.0))


@functools.lru_cache(maxsize=1)
def _metric():
    """One sacrebleu BLEU scorer, reused across requests."""
    try:
        from sacrebleu.metrics import BLEU
    except ImportError:
        raise SpecscopeError("prompt-output overlap needs sacrebleu: pip install 'specscope[engine]'") from None
    return BLEU(tokenize="13a", smooth_method="exp", lowercase=False, effective_order=True)
