"""Self-distillation data for draft heads: the target's own greedy continuations and its features.

For each prompt the target decodes greedily (batched through the engine, `--method none`), then one
teacher-forced pass over prompt + output records, per position p:
  - `hidden[p]`: the target's last hidden state (after the final norm, what its LM head reads);
  - `aux[p]`: the low/mid/high layer features EAGLE-3 fuses (outputs of `aux_layers(L)`);
  - `label[p]`: the target's greedy choice for position p + 1 (argmax of its logits at p).
A head is trained to predict `label` (the target's own choices), so acceptance at inference is what
it learns. Everything is stored as float16 on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def aux_layers(num_layers: int) -> tuple[int, int, int]:
    """Layers whose outputs EAGLE-3 fuses: the inputs of layers 2, L/2 and L-3 (as published EAGLE-3 heads)."""
    pick = (1, num_layers // 2 - 1, num_layers - 4)
    return tuple(min(max(i, 0), num_layers - 1) for i in pick)


@dataclass
class HeadData:
    """Per sequence: tokens [n], hidden [n, H], aux [n, 3H], labels [n] (the target's greedy next token)."""

    tokens: list[torch.Tensor]
    hidden: list[torch.Tensor]
    aux: list[torch.Tensor]
    labels: list[torch.Tensor]
    prompt_lens: list[int]

    @property
    def num_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    def state(self) -> dict:
        return {k: getattr(self, k) for k in ("tokens", "hidden", "aux", "labels", "prompt_lens")}


def generate_continuations(target, requests, batch_size: int, max_new_tokens: int, stop_ids, on_done=None):
    """Token ids (prompt + greedy output) of every request, decoded in batches by the engine."""
    from specscope.engine.engine import Engine
    from specscope.settings import RunSettings

    engine = Engine.plain(target, RunSettings(batch_size=batch_size, max_new_tokens=max_new_tokens), stop_ids)
    out = {}
    for seq in engine.generate(requests):
        if seq.error is None:
            out[seq.request.id] = (seq.context.copy(), seq.prompt_len)
        if on_done is not None:
            on_done(seq)
    return [out[r.id] for r in requests if r.id in out]


def target_features(target, sequences: list[np.ndarray], prompt_lens: list[int], batch_tokens: int = 2048,
                    on_done=None) -> HeadData:
    """One teacher-forced pass per group of sequences: hidden, aux features and greedy labels."""
    layers = aux_layers(target.config.num_layers)
    data = HeadData([], [], [], [], list(prompt_lens))
    order = list(range(len(sequences)))
    groups, cur, size = [], [], 0
    for i in order:
        if cur and size + len(sequences[i]) > batch_tokens:
            groups.append(cur)
            cur, size = [], 0
        cur.append(i)
        size += len(sequences[i])
    if cur:
        groups.append(cur)
    results = {}
    for group in groups:
        max_len = max(len(sequences[i]) for i in group)
        cache = target.new_cache(len(group), max_len)
        chunks = [torch.as_tensor(sequences[i]) for i in group]
        out = target.forward_chunks(cache, list(range(len(group))), chunks, hidden_layers=layers)
        for j, i in enumerate(group):
            aux = torch.cat([out.layer_hidden[layer][j] for layer in layers], dim=-1)
            results[i] = (out.hidden[j].half(), aux.half(), out.logits[j].argmax(-1))
            if on_done is not None:
                on_done(len(sequences[i]))
    for i in order:
        hidden, aux, labels = results[i]
        data.tokens.append(torch.as_tensor(sequences[i], dtype=torch.long))
        data.hidden.append(hidden)
        data.aux.append(aux)
        data.labels.append(labels)
    return data
