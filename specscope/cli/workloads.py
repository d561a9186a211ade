"""`specscope workloads`: list the task families, or show the prompts one of them would run.

    specscope workloads                                  # the six families, their sources and sizes
    specscope workloads code-edit -n 5 --seed 1          # a seeded subset of the bundled samples
    specscope workloads math --source hf                 # the real GSM8K (needs `datasets`)
    specscope workloads chat --source mine.csv --prompt-field question --render --context-len 2048

With `--json`, ends with one JSON line describing what was listed or loaded.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from specscope.cli.options import ChatOpt, FieldOpt, JsonOpt, NumPromptsOpt, PromptFieldOpt, SeedOpt, SourceOpt, print_json
from specscope.errors import SpecscopeError
from specscope.workloads import WORKLOADS, Prompt, load_prompts, parse_field_map
from specscope.workloads.loader import source_label
from specscope.workloads.registry import get_workload
from specscope.workloads.render import render_prompt, render_text, use_chat
from specscope.workloads.sampling import select_fitting


def register(app: typer.Typer) -> None:
    """Add the `workloads` verb to the app."""
    app.command("workloads")(workloads)


def workloads(
    name: Annotated[Optional[str], typer.Argument(help="A workload to show prompts of; omit to list all.")] = None,
    source: SourceOpt = None,
    prompt_field: PromptFieldOpt = None,
    field: FieldOpt = None,
    num_prompts: NumPromptsOpt = None,
    seed: SeedOpt = 0,
    render: Annotated[bool, typer.Option("--render", help="Tokenize with the model to count prompt tokens.")] = False,
    model: Annotated[
        Optional[str], typer.Option("--model", help="Model whose tokenizer renders prompts (default: smollm2-135m).")
    ] = None,
    chat: ChatOpt = None,
    context_len: Annotated[
        Optional[int],
        typer.Option("--context-len", help="Skip prompts that do not fit this many tokens (implies --render)."),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Print every prompt in full (rendered, with --render).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the workloads, or load and show the prompts of one."""
    console = Console(highlight=False)
    if name is None:
        if source or prompt_field or field or num_prompts or render or full or context_len:
            raise SpecscopeError("name a workload to load prompts, e.g. `specscope workloads code-edit --source FILE`")
        print_json(json_out, {"workloads": _list_families(console)})
        return
    wl = get_workload(name)
    if context_len is not None and context_len < 2:
        raise SpecscopeError(f"--context-len {context_len}: must be an integer >= 2")
    if num_prompts is not None and num_prompts < 1:
        raise SpecscopeError(f"--num-prompts {num_prompts}: must be an integer >= 1")
    prompts = load_prompts(wl.name, source, prompt_field, parse_field_map(field), num_prompts, seed)
    tokens, skipped, tokenizer = None, 0, None
    if render or context_len is not None:
        from specscope.engine.loading import load_tokenizer

        tokenizer = load_tokenizer(model)
        chat = use_chat(tokenizer, chat)
        prompts, tokens, skipped = _render(prompts, tokenizer, chat, context_len)
    _show_prompts(console, prompts, tokens, tokenizer, chat, full)
    label = source_label(wl, source)
    note = f"; skipped {skipped} longer than the context ({context_len} tokens)" if skipped else ""
    console.print(f"{len(prompts)} {wl.name} prompts from {label}{note}")
    ids = [p.id for p in prompts]
    summary = {"workload": wl.name, "source": label, "prompts": len(prompts), "skipped_too_long": skipped}
    print_json(json_out, {**summary, "ids": ids, "prompt_tokens": tokens})


def _render(prompts: list[Prompt], tokenizer, chat: bool, context_len: Optional[int]):
    """Token counts of the prompts, dropping those that do not fit `context_len`: (prompts, counts, skipped)."""
    ids = [render_prompt(p, tokenizer, chat) for p in prompts]
    skipped = 0
    if context_len is not None:
        kept, skipped = select_fitting(ids, context_len)
        prompts, ids = [prompts[i] for i in kept], [ids[i] for i in kept]
    return prompts, [len(i) for i in ids], skipped


def _list_families(console: Console) -> list[dict]:
    """Print the families' table; returns them as JSON-able rows."""
    table = Table(title="Workloads")
    rows = []
    cells = []
    for wl in WORKLOADS.values():
        count = wl.bundled_count()
        reasoning = "yes" if wl.is_reasoning else "no"
        cells.append([wl.name, wl.dataset, str(count), str(wl.max_new_tokens), reasoning, wl.hf.repo])
        rows.append(
            {
                "name": wl.name,
                "aliases": list(wl.aliases),
                "dataset": wl.dataset,
                "task": wl.task,
                "bundled": count,
                "hf": wl.hf.label,
                "fields": list(wl.fields),
                "max_new_tokens": wl.max_new_tokens,
                "is_reasoning": wl.is_reasoning,
            }
        )
    _fill(table, ["name", "study dataset", "bundled", "max new", "reasoning", "--source hf"], cells, console.width)
    console.print(table)
    return rows


def _show_prompts(console: Console, prompts: list[Prompt], tokens, tokenizer, chat, full: bool) -> None:
    if full:
        for prompt in prompts:
            text = render_text(prompt, tokenizer, chat) if tokenizer is not None else prompt.text
            console.rule(prompt.id)
            print(text)
        return
    headers = ["id", "turns", "words", *(["tokens"] if tokens is not None else []), "starts with"]
    cells = []
    for i, prompt in enumerate(prompts):
        preview = " ".join(prompt.messages[-1]["content"].split())[:60]
        counts = [str(len(prompt.messages)), str(len(prompt.text.split()))]
        cells.append([prompt.id, *counts, *([str(tokens[i])] if tokens is not None else []), preview])
    table = Table()
    _fill(table, headers, cells, console.width)
    console.print(table)


def _fill(table: Table, headers: list[str], cells: list[list[str]], width: int) -> None:
    """Add columns that keep their full width, except the last, cut with an ellipsis to fit `width`."""
    widths = [max([len(header), *(len(row[j]) for row in cells)]) for j, header in enumerate(headers)]
    room = max(12, width - sum(w + 3 for w in widths[:-1]) - 4)
    for j, header in enumerate(headers):
        last = j == len(headers) - 1
        table.add_column(
            header,
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if last else widths[j],
            max_width=room if last else None,
        )
    for row in cells:
        table.add_row(*row)
