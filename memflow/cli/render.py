"""Text rendering for the command line: tables (drawn by rich), status colours, times, durations."""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, OverflowMethod
from rich.table import Table
from rich.text import Text

STATUS_COLORS = {"completed": "green", "done": "green", "failed": "red",
                 "interrupted": "yellow", "running": "cyan", "pending": "blue",
                 "cancelled": "magenta", "timed_out": "red", "continued": "green"}


class Cell:
    """A table cell: its text and how to style it on a terminal."""

    def __init__(self, text: Any, **style: Any):
        self.text = "" if text is None else str(text)
        self.style = style


def stdout_tty() -> bool:
    """True when stdout is a terminal (then long cells are cut to fit)."""
    return sys.stdout.isatty()


def width() -> int:
    """The terminal's width in columns."""
    return shutil.get_terminal_size((120, 24)).columns


def status(value: str) -> Cell:
    """A status, coloured by what it means."""
    return Cell(value, fg=STATUS_COLORS.get(value), bold=value in ("failed",))


def shorten(text: str, limit: int | None, middle: bool = False) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (unchanged when ``limit`` is None);
    ``middle`` keeps both ends (for ids, whose ends tell them apart)."""
    text = text.replace("\n", " ")
    if limit is None or len(text) <= limit:
        return text
    if middle and limit >= 9:
        tail = (limit - 1) // 2
        return text[: limit - 1 - tail] + "…" + text[-tail:]
    return text[: max(1, limit - 1)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell | str]],
          limits: dict[int, int] | None = None, indent: str = "",
          middle: Sequence[int] = ()) -> list[str]:
    """The lines of a table drawn by rich: columns two spaces apart, the header bold.

    On a terminal, columns in ``limits`` are cut to that width (in the middle for the columns
    in ``middle``) and the table fits the window; elsewhere every cell is whole and unstyled,
    one row per line, so that the output stays parseable.
    """
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    tty = stdout_tty()
    if tty and limits:
        for row in cells:
            for i, limit in limits.items():
                if i < len(row):
                    row[i].text = shorten(row[i].text, limit, i in middle)
    grid = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    last = len(headers) - 1
    for i, header in enumerate(headers):
        # Only the last column gives way to a narrow window; the others keep their width.
        whole = max([len(header), *(len(row[i].text) for row in cells if i < len(row))])
        grid.add_column(Text(header), min_width=None if i == last else whole)
    overflow: OverflowMethod = "ellipsis" if tty else "ignore"
    for row in cells:
        grid.add_row(*(Text(c.text, style=_style(c.style), no_wrap=True, overflow=overflow)
                       for c in row))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=tty, highlight=False,
                      width=max(20, width() - len(indent)) if tty else 1_000_000)
    console.print(grid)
    return [(indent + line).rstrip() for line in buffer.getvalue().splitlines()]


def _style(style: dict[str, Any]) -> str:
    """A rich style from click-style options (``fg=``, ``bold=``)."""
    words = [name for name in ("bold", "dim") if style.get(name)]
    return " ".join([*words, style["fg"]] if style.get("fg") else words)


def when(value: datetime | None) -> str:
    """A timestamp in local time, to the second."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``1.25 s``, ``2m 03s``, ``1h 02m``, ``3d 04h``."""
    if value is None:
        return "-"
    if value == 0:
        return "0 s"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.2f} ms"
    if value < 60:
        return f"{value:.2f} s"

    def pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
        return f"{big}{big_unit}" + (f" {small:02d}{small_unit}" if small else "")

    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return pair(minutes, "m", secs, "s")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return pair(hours, "h", minutes, "m")
    days, hours = divmod(hours, 24)
    return pair(days, "d", hours, "h")


def elapsed(start: datetime | None, end: datetime | None) -> str:
    """The time between two timestamps (``-`` when either is missing)."""
    if start is None or end is None:
        return "-"
    return seconds((end - start).total_seconds())


def compact(value: Any) -> str:
    """A value as one line of JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def error_line(err: dict[str, Any] | None) -> str:
    """A stored error document as ``Type (code): message``."""
    if not err:
        return "-"
    kind = err.get("type") or "Error"
    code = err.get("code")
    return f"{kind} ({code}): {err.get('message', '')}" if code else f"{kind}: {err.get('message')}"
