"""From a source row to a workload record: field mapping and per-row checks.

A source row is a dict with the source's own column names. The field map says which column holds
each template field (`--prompt-field COL` maps the workload's main field; `--field a=COL,b=COL2`
maps any). Unmapped template fields are looked up under their own names. Every problem is reported
as one line naming the file and line (`where`) and how to fix it.
"""

from __future__ import annotations

from typing import Iterable, Optional

from specscope.errors import SpecscopeError

ROLE_NAMES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
}


def parse_field_map(values: Optional[Iterable[str] | str]) -> dict[str, str]:
    """Parse `--field` values: `instruction=question,input=context` (repeatable) -> {field: column}."""
    if values is None:
        return {}
    if isinstance(values, str):
        values = [values]
    mapping: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            field, sep, column = item.partition("=")
            if not sep or not field.strip() or not column.strip():
                raise SpecscopeError(
                    f"bad --field value '{item}': write FIELD=COLUMN, e.g. --field instruction=question,input=context"
                )
            mapping[field.strip()] = column.strip()
    return mapping


def build_field_map(workload, prompt_field: Optional[str], field_map: Optional[dict[str, str]]) -> dict[str, str]:
    """The field map for `workload`: `field_map` plus `prompt_field` for the main field, checked."""
    mapping = dict(field_map or {})
    unknown = sorted(set(mapping) - set(workload.fields))
    if unknown:
        raise SpecscopeError(
            f"workload '{workload.name}' has no template field '{unknown[0]}'; "
            f"its fields are: {', '.join(workload.fields)}"
        )
    if prompt_field:
        main = workload.main_field
        if main in mapping and mapping[main] != prompt_field:
            raise SpecscopeError(
                f"--prompt-field {prompt_field} and --field {main}={mapping[main]} disagree; give only one"
            )
        mapping[main] = prompt_field
    return mapping


def extract_record(row: dict, workload, mapping: dict[str, str], where: str) -> dict:
    """The workload record of one source row: its template fields, as text (history as turns)."""
    record: dict = {}
    for field in workload.fields:
        column = mapping.get(field, field)
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            if field in workload.required:
                raise _missing(row, workload, field, column, where, present=column in row)
            if field in mapping and column not in row:
                raise _missing(row, workload, field, column, where, present=False)
            continue
        record[field] = _convert(field, value, column, where)
    return record


def _missing(row: dict, workload, field: str, column: str, where: str, present: bool) -> SpecscopeError:
    flag = "--prompt-field NAME" if field == workload.main_field else f"--field {field}=NAME"
    if present:
        return SpecscopeError(f"{where}: field '{column}' is empty ({workload.name} needs its {field})")
    available = ", ".join(list(row)[:12]) or "none"
    return SpecscopeError(
        f"{where}: no field '{column}' for {workload.name}'s {field} (fields here: {available}); "
        f"name the right one with {flag}"
    )


def _convert(field: str, value, column: str, where: str):
    if field == "history":
        return to_turns(value, column, where)
    if field == "message" and isinstance(value, list):
        return _first_user_turn(to_turns(value, column, where), column, where)
    if isinstance(value, (dict, list)):
        raise SpecscopeError(f"{where}: field '{column}' should be text, found a JSON {type(value).__name__}")
    return str(value)


def to_turns(value, column: str, where: str) -> list[dict]:
    """A conversation as chat turns: accepts `{"role", "content"}` and ShareGPT `{"from", "value"}`."""
    if not isinstance(value, list):
        raise SpecscopeError(
            f"{where}: field '{column}' should be a list of turns like "
            '[{"role": "user", "content": "..."}] (JSON or JSONL sources only)'
        )
    turns = []
    for turn in value:
        role = turn.get("role", turn.get("from")) if isinstance(turn, dict) else None
        content = turn.get("content", turn.get("value")) if isinstance(turn, dict) else None
        if str(role).lower() not in ROLE_NAMES or not isinstance(content, str):
            raise SpecscopeError(
                f"{where}: field '{column}' has a turn that is not "
                '{"role": "system"|"user"|"assistant", "content": "..."}'
            )
        turns.append({"role": ROLE_NAMES[str(role).lower()], "content": content})
    return turns


def _first_user_turn(turns: list[dict], column: str, where: str) -> str:
    """A conversation given as the message: its first user turn (as the study did with ShareGPT)."""
    for turn in turns:
        if turn["role"] == "user" and turn["content"].strip():
            return turn["content"]
    raise SpecscopeError(f"{where}: conversation in field '{column}' has no user turn")
