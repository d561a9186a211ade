"""Progress bars for the study layer's long jobs, on a rich console.

    with rich_tasks(console)("data: greedy outputs", 120) as task:
        task.advance()          # or task.update(completed=n, total=m, description="loss 1.2")

`rich_tasks(console)` is the `ProgressFactory` the study layer's jobs take (`specscope/study/head_training.py`).
"""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class _Task:
    def __init__(self, progress: Progress, task):
        self.progress, self.task = progress, task

    def advance(self, n: float = 1) -> None:
        self.progress.advance(self.task, n)

    def update(self, completed=None, total=None, description=None) -> None:
        changes = {k: v for k, v in (("completed", completed), ("total", total), ("description", description))
                   if v is not None}
        self.progress.update(self.task, **changes)


def rich_tasks(console: Console):
    """A progress factory: `(label, total) -> context manager` yielding a task with advance/update."""

    @contextmanager
    def task(label: str, total: int | None):
        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            yield _Task(progress, progress.add_task("", total=total))

    return task
