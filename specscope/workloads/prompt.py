"""The `Prompt`: one request of a workload, as chat messages, before tokenisation.

A prompt is what a workload template makes of one record (a row of a bundled sample file, a
Hugging Face dataset or the user's own file). `render.py` turns it into token ids.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """One request.

    id:             stable identifier (the record's `id` field, else `<workload>-<index>`).
    workload:       canonical workload name (`code-edit`, `chat`, ...).
    messages:       chat turns `[{"role": "system"|"user"|"assistant", "content": str}, ...]`,
                    ending with a user turn.
    max_new_tokens: the workload's default output-length limit.
    is_reasoning:   True for long-form reasoning workloads (AIME, GPQA).
    source:         where it came from: `bundled`, `hf:<dataset>` or a file path.
    """

    id: str
    workload: str
    messages: tuple[dict, ...]
    max_new_tokens: int
    is_reasoning: bool = False
    source: str = "bundled"

    @property
    def text(self) -> str:
        """The prompt as plain text: what a base model reads, and what BLEU overlap compares with.

        A single user turn is its content; a conversation is labelled turns ending with
        `Assistant:` so a base model continues as the assistant.
        """
        turns = [m for m in self.messages if m["role"] != "system"]
        if len(turns) == 1:
            return turns[0]["content"]
        labels = {"user": "User", "assistant": "Assistant"}
        lines = [f"{labels[m['role']]}: {m['content']}" for m in turns]
        return "\n\n".join(lines) + "\n\nAssistant:"

    def to_json(self) -> dict:
        """A JSON-ready dict (for result files and the `workloads` verb)."""
        return {
            "id": self.id,
            "workload": self.workload,
            "messages": [dict(m) for m in self.messages],
            "max_new_tokens": self.max_new_tokens,
            "is_reasoning": self.is_reasoning,
            "source": self.source,
        }
