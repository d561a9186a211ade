"""The Hugging Face datasets the study used, and how each row becomes a workload record.

`--source hf` loads them through the `datasets` library (ShareGPT, a single JSON file in a dataset
repository, is fetched with `huggingface_hub` and read like a local file). Each adapter is a pure
function from one dataset row to `(id, record)` — the record holding the workload's template
fields — or None for a row that cannot make a prompt (e.g. a conversation without a user turn).
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Callable, Optional

from specscope.errors import SpecscopeError

HF_INSTALL_HINT = "pip install 'specscope[hf]'"


@dataclass(frozen=True)
class HFDataset:
    """Where a workload's real dataset lives on the Hugging Face Hub."""

    repo: str
    split: str
    adapter: Callable[[dict, int], Optional[tuple[str, dict]]]
    config: Optional[str] = None
    data_file: Optional[str] = None  # a single file of the repo, read without `datasets`
    gated: bool = False

    @property
    def label(self) -> str:
        """`repo[/config or file]:split`, as shown by `specscope workloads`."""
        part = self.config or self.data_file
        return f"{self.repo}{'/' + part if part else ''}:{self.split}"


def _text(value) -> str:
    return "" if value is None else str(value)


def instructcoder_row(row: dict, index: int):
    """likaixin/InstructCoder: `instruction` (the edit) and `input` (the code)."""
    if not _text(row.get("instruction")).strip():
        return None
    return f"instructcoder-{index}", {"instruction": _text(row["instruction"]), "input": _text(row.get("input"))}


def sharegpt_row(row: dict, index: int):
    """ShareGPT: the first human turn of `conversations` (`[{"from": "human"|"gpt", "value": ...}]`)."""
    for turn in row.get("conversations") or []:
        if turn.get("from") in ("human", "user") and _text(turn.get("value")).strip():
            return _text(row.get("id") or f"sharegpt-{index}"), {"message": _text(turn["value"])}
    return None


def cnn_dailymail_row(row: dict, index: int):
    """abisee/cnn_dailymail 3.0.0: `article` (the summary is `highlights`, unused)."""
    if not _text(row.get("article")).strip():
        return None
    return _text(row.get("id") or f"cnn-{index}"), {"article": _text(row["article"])}


def gsm8k_row(row: dict, index: int):
    """openai/gsm8k main: `question`."""
    return f"gsm8k-{index}", {"question": _text(row["question"])}


def aime_row(row: dict, index: int):
    """AI-MO/aimo-validation-aime (AIME 2022–24): `problem`."""
    return _text(row.get("id", f"aime-{index}")), {"problem": _text(row["problem"])}


def gpqa_row(row: dict, index: int):
    """Idavidrein/gpqa gpqa_main: the question and four answers, shuffled into A–D.

    The order is seeded by the record id so that every load shows the same letters.
    """
    record_id = _text(row.get("Record ID") or f"gpqa-{index}")
    answers = [_text(row["Correct Answer"])] + [_text(row[f"Incorrect Answer {i}"]) for i in (1, 2, 3)]
    random.Random(record_id).shuffle(answers)
    record = {"question": _text(row["Question"])}
    record.update(zip(("choice_a", "choice_b", "choice_c", "choice_d"), (a.strip() for a in answers)))
    return record_id, record


INSTRUCTCODER = HFDataset("likaixin/InstructCoder", "validation", instructcoder_row)
SHAREGPT = HFDataset(
    "anon8231489123/ShareGPT_Vicuna_unfiltered",
    "train",
    sharegpt_row,
    data_file="ShareGPT_V3_unfiltered_cleaned_split.json",
)
CNN_DAILYMAIL = HFDataset("abisee/cnn_dailymail", "test", cnn_dailymail_row, config="3.0.0")
GSM8K = HFDataset("openai/gsm8k", "test", gsm8k_row, config="main")
AIME = HFDataset("AI-MO/aimo-validation-aime", "train", aime_row)
GPQA = HFDataset("Idavidrein/gpqa", "train", gpqa_row, config="gpqa_main", gated=True)


def load_hf_rows(spec: HFDataset) -> list[dict]:
    """All rows of the dataset's split, as plain dicts; one clear line if that is impossible."""
    try:
        if spec.data_file:
            return _load_hub_file(spec)
        import datasets
    except ImportError:
        raise SpecscopeError(
            f"--source hf needs the `datasets` library, which is not installed: run {HF_INSTALL_HINT} "
            "(or leave out --source to use the bundled samples)"
        ) from None
    try:
        with _quiet_hub_logs():
            return list(datasets.load_dataset(spec.repo, spec.config, split=spec.split))
    except Exception as err:  # network, cache, gating and schema errors all come here
        raise _unreachable(spec, err) from None


def _load_hub_file(spec: HFDataset) -> list[dict]:
    """Download (or take from the HF cache) one file of a dataset repository and read it."""
    from huggingface_hub import hf_hub_download

    from specscope.workloads.local import read_rows

    try:
        with _quiet_hub_logs():
            path = hf_hub_download(spec.repo, spec.data_file, repo_type="dataset")
    except Exception as err:
        raise _unreachable(spec, err) from None
    return [row for _, row in read_rows(path)]


@contextlib.contextmanager
def _quiet_hub_logs():
    """Silence the hub's retry warnings: a failure is reported once, by `_unreachable`."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets", "fsspec")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _unreachable(spec: HFDataset, err: Exception) -> SpecscopeError:
    reason = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:160] or type(err).__name__
    gated = ""
    if spec.gated:
        gated = " (this dataset is gated: accept its terms on huggingface.co and run `huggingface-cli login`)"
    return SpecscopeError(
        f"could not load Hugging Face dataset {spec.label}: {reason}{gated}; check the network, or "
        "use a cached copy (HF_HOME, HF_DATASETS_OFFLINE=1), or leave out --source for the bundled samples"
    )
