"""The prompts of a run: its workload's (bundled, a dataset, or the user's own file), as settings describe them.

`--workload FILE.jsonl` is shorthand for `--workload chat --source FILE` (with `--prompt-field prompt`
when the file's records have a `prompt` but no `message` field).
"""

from __future__ import annotations

from pathlib import Path

from specscope.settings import RunSettings
from specscope.workloads.prompt import Prompt


def run_prompts(settings: RunSettings) -> list[Prompt]:
    """The prompts `settings` describe (raises SpecscopeError on bad input)."""
    from specscope.workloads import load_prompts, parse_field_map

    workload, source, prompt_field = settings.workload, settings.source, settings.prompt_field
    if Path(workload).is_file():
        source, path = workload, Path(workload)
        workload = "chat"
        if prompt_field is None and not settings.fields:
            prompt_field = _guess_prompt_field(path)
    fields = parse_field_map(list(settings.fields) or None)
    return load_prompts(workload, source, prompt_field, fields, settings.num_prompts, settings.seed)


def _guess_prompt_field(path: Path) -> str | None:
    """'prompt' when the file's first JSON record has a `prompt` but no `message` field (read as every input is:
    `formats/files.py`; a file that is not JSON Lines guesses nothing, and its reader reports why)."""
    from specscope.errors import SpecscopeError
    from specscope.formats.files import read_jsonl_objects

    try:
        _, first = next(iter(read_jsonl_objects(path, "prompt file")))
    except (SpecscopeError, StopIteration):
        return None
    if isinstance(first, dict) and "prompt" in first and "message" not in first:
        return "prompt"
    return None
