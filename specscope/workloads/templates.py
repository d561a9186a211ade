"""Prompt templates: how each workload turns one record into chat messages.

A record is a dict of the workload's template fields (see `registry.py`), already mapped from the
source's own column names and checked by `fields.py`. Every template returns the chat turns of one
request, ending with the user turn the model answers. The wording is specscope's own.
"""

from __future__ import annotations


def user(content: str) -> list[dict]:
    """A single user turn."""
    return [{"role": "user", "content": content}]


def code_edit(record: dict) -> list[dict]:
    """InstructCoder style: an edit instruction and the code to edit; the answer is the whole code.

    Asking for the complete edited code makes the output copy most of the prompt, which is what
    gives n-gram drafting its advantage on this workload.
    """
    text = f"{record['instruction'].strip()}\n"
    code = record.get("input", "").strip("\n")
    if code.strip():
        text += f"\n```{record.get('language', '').strip()}\n{code}\n```\n"
    text += "\nRewrite the code with this change applied and reply with the complete edited code."
    return user(text)


def chat(record: dict) -> list[dict]:
    """ShareGPT style: optional earlier turns, then the user's message."""
    return [*record.get("history", []), *user(record["message"].strip())]


def summarize(record: dict) -> list[dict]:
    """CNN/DailyMail style: a news article to summarise."""
    return user(
        "Summarize the following news article in three or four sentences.\n\n"
        f"Article:\n{record['article'].strip()}"
    )


def math(record: dict) -> list[dict]:
    """GSM8K style: a grade-school word problem, solved step by step."""
    return user(
        f"{record['question'].strip()}\n\n"
        "Solve the problem step by step. End with the final numeric answer on its own line "
        "in the form '#### <answer>'."
    )


def aime(record: dict) -> list[dict]:
    """AIME style: a competition problem whose answer is an integer from 0 to 999."""
    return user(
        f"{record['problem'].strip()}\n\n"
        "Reason carefully step by step. The answer is an integer from 0 to 999; "
        "put it in \\boxed{} at the end."
    )


GPQA_CHOICES = ("choice_a", "choice_b", "choice_c", "choice_d")


def gpqa(record: dict) -> list[dict]:
    """GPQA style: a graduate-level science question with lettered choices."""
    text = (
        "Answer the following multiple-choice question. Think step by step, then finish with "
        "a line of the form 'Answer: X' where X is the letter of the correct choice.\n\n"
        f"{record['question'].strip()}\n"
    )
    choices = [(letter, record.get(name, "").strip()) for letter, name in zip("ABCD", GPQA_CHOICES)]
    listed = "".join(f"\n{letter}) {choice}" for letter, choice in choices if choice)
    return user(text + listed)
