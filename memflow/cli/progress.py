"""Progress of long commands on stderr, drawn by ``rich`` on a terminal and silent otherwise.

Off a terminal (a pipe, a log file, cron) nothing is drawn, so stderr keeps only the lines the
commands write on purpose; stdout is never touched.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


def stderr_tty() -> bool:
    """True when stderr is a terminal (then progress is drawn)."""
    return sys.stderr.isatty()


class Meter:
    """The progress of one piece of work; every method does nothing off a terminal."""

    def __init__(self, display: Progress | None, task: TaskID | None) -> None:
        self._display = display
        self._task = task

    def advance(self, amount: float = 1, description: str | None = None) -> None:
        """Count ``amount`` more units done (and optionally change the description)."""
        if self._display is not None and self._task is not None:
            self._display.update(self._task, advance=amount, description=description)

    def next(self, description: str, total: float | None = None) -> Meter:
        """Start another piece of work in the same display (the previous one stays shown)."""
        if self._display is None:
            return self
        return Meter(self._display, self._display.add_task(description, total=total))


@contextlib.contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Meter]:
    """Show the progress of the block on stderr while it runs, removed when it ends: a bar
    with ``done/total`` when ``total`` is known, else a spinner; always the time spent."""
    if not stderr_tty():
        yield Meter(None, None)
        return
    columns: list[str | ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as display:
        yield Meter(display, display.add_task(description, total=total))
