"""Choosing which prompts run: a seeded subset, and dropping prompts too long for the model.

Both return indices into the caller's list, so prompts, token ids and results stay aligned.
"""

from __future__ import annotations

import random
from typing import Optional, Sequence

from specscope.errors import SpecscopeError


def sample_indices(total: int, num_prompts: Optional[int], seed: int = 0) -> list[int]:
    """Indices of a reproducible subset of `num_prompts` out of `total`, in source order.

    None, or `total`, keeps everything; more than `total` is an error naming how many there are (a run
    of fewer prompts than asked for would be measured as if it were the one asked for). The same
    (total, num_prompts, seed) always gives the same subset.
    """
    if num_prompts is not None and num_prompts < 1:
        raise SpecscopeError(f"--num-prompts must be at least 1, got {num_prompts}")
    if num_prompts is not None and num_prompts > total:
        raise SpecscopeError(f"--num-prompts {num_prompts}: only {total} prompt(s) are available; pass at most {total} "
                             "(or leave it out to run them all)")
    if num_prompts is None or num_prompts == total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), num_prompts))


def select_fitting(
    prompt_ids_list: Sequence[Sequence[int]], context_len: int, min_new_tokens: int = 1
) -> tuple[list[int], int]:
    """Indices of the prompts that leave room for `min_new_tokens` in a `context_len` window.

    Returns `(kept_indices, skipped_count)`; the caller reports the count.
    """
    if context_len < 1:
        raise SpecscopeError(f"context length must be at least 1, got {context_len}")
    limit = context_len - min_new_tokens
    kept = [i for i, ids in enumerate(prompt_ids_list) if 0 < len(ids) <= limit]
    return kept, len(prompt_ids_list) - len(kept)
