"""The workload registry: the study's six task families by name.

Each `Workload` knows its template (`templates.py`), the template fields a record provides (the
first is the main one, set from a user's file with `--prompt-field`), its default output-length
limit, whether it is a reasoning workload, its bundled offline sample file and its real dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from specscope.errors import unknown_name
from specscope.workloads import hf, templates

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Workload:
    """One task family.

    fields:   template fields, main field first; `required` ones must be non-empty in every record.
    """

    name: str
    task: str
    dataset: str
    template: Callable[[dict], list[dict]]
    fields: tuple[str, ...]
    required: tuple[str, ...]
    max_new_tokens: int
    is_reasoning: bool
    hf: hf.HFDataset
    aliases: tuple[str, ...] = ()

    @property
    def main_field(self) -> str:
        """The field `--prompt-field` sets."""
        return self.fields[0]

    @property
    def bundled_path(self) -> Path:
        """The offline sample file shipped with specscope."""
        return DATA_DIR / f"{self.name}.jsonl"

    def bundled_count(self) -> int:
        """Number of bundled sample prompts (non-blank lines of the sample file)."""
        with open(self.bundled_path, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip())


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            name="code-edit",
            task="code editing: apply an instruction to a piece of code",
            dataset="InstructCoder",
            template=templates.code_edit,
            fields=("instruction", "input", "language"),
            required=("instruction",),
            max_new_tokens=512,
            is_reasoning=False,
            hf=hf.INSTRUCTCODER,
            aliases=("instructcoder", "code"),
        ),
        Workload(
            name="chat",
            task="online chat: a user's message, sometimes after earlier turns",
            dataset="ShareGPT",
            template=templates.chat,
            fields=("message", "history"),
            required=("message",),
            max_new_tokens=512,
            is_reasoning=False,
            hf=hf.SHAREGPT,
            aliases=("sharegpt",),
        ),
        Workload(
            name="summarize",
            task="summarization of a news article",
            dataset="CNN/DailyMail",
            template=templates.summarize,
            fields=("article",),
            required=("article",),
            max_new_tokens=256,
            is_reasoning=False,
            hf=hf.CNN_DAILYMAIL,
            aliases=("cnn_dailymail", "cnn", "summarization"),
        ),
        Workload(
            name="math",
            task="grade-school math word problems",
            dataset="GSM8K",
            template=templates.math,
            fields=("question",),
            required=("question",),
            max_new_tokens=512,
            is_reasoning=False,
            hf=hf.GSM8K,
            aliases=("gsm8k",),
        ),
        Workload(
            name="aime",
            task="long-form reasoning on competition math (AIME 2022-24)",
            dataset="AIME 2022-24",
            template=templates.aime,
            fields=("problem",),
            required=("problem",),
            max_new_tokens=4096,
            is_reasoning=True,
            hf=hf.AIME,
        ),
        Workload(
            name="gpqa",
            task="long-form reasoning on graduate-level science multiple choice",
            dataset="GPQA-Main",
            template=templates.gpqa,
            fields=("question", *templates.GPQA_CHOICES),
            required=("question",),
            max_new_tokens=4096,
            is_reasoning=True,
            hf=hf.GPQA,
            aliases=("gpqa-main", "gpqa_main"),
        ),
    ]
}

ALIASES: dict[str, str] = {alias: w.name for w in WORKLOADS.values() for alias in w.aliases}


def get_workload(name: str) -> Workload:
    """The workload called `name` (or one of its aliases, any case); unknown names list the available ones."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in WORKLOADS:
        raise unknown_name("workload", name, WORKLOADS)
    return WORKLOADS[key]
