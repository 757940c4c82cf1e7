"""Rich progress bars on stderr for long jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bpoguard.cli._common import err

if TYPE_CHECKING:
    from rich.progress import TaskID


@contextmanager
def stages(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """Yield a callback (stage, done, total) that drives one bar per stage."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    # Imported only when bars are drawn: a command piped or run with --json draws none.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=err, transient=False) as progress:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update
