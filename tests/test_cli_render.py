"""The command line's tables and progress (drawn by rich), without a database."""

from __future__ import annotations

import io
import sys

from memflow.cli import progress as progress_module
from memflow.cli import render
from memflow.cli.render import Cell

HEADERS = ["ID", "STATUS", "RESULT"]
ROWS = [["a-very-long-workflow-id-0123456789", render.status("failed"), "x" * 300],
        ["b", render.status("completed"), Cell("ok", fg="green")]]


def test_piped_table_is_plain_whole_and_aligned(monkeypatch):
    monkeypatch.setattr(render, "stdout_tty", lambda: False)
    lines = render.table(HEADERS, ROWS, limits={0: 12, 2: 20}, middle=[0], indent="  ")
    assert lines == [
        "  ID                                  STATUS     RESULT",
        "  a-very-long-workflow-id-0123456789  failed     " + "x" * 300,
        "  b                                   completed  ok",
    ]
    assert not any("\x1b[" in line for line in lines)


def test_terminal_table_is_styled_cut_and_fits_the_window(monkeypatch):
    monkeypatch.setattr(render, "stdout_tty", lambda: True)
    monkeypatch.setattr(render, "width", lambda: 60)
    monkeypatch.delenv("NO_COLOR", raising=False)
    lines = render.table(HEADERS, ROWS, limits={0: 12}, middle=[0])
    assert len(lines) == 3
    assert "\x1b[1m" in lines[0]                       # bold header
    assert "a-very…56789" in lines[1] and "\x1b[" in lines[1]
    assert all(len(_plain(line)) <= 60 for line in lines)
    assert "…" in _plain(lines[1])[-3:]                # the long result is cut to fit


def _plain(line: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)


def test_progress_draws_nothing_off_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with progress_module.progress("pruning", total=10) as meter:
        meter.advance(5)
        meter.next("more").advance(1, "done")
    assert err.getvalue() == ""


def test_progress_on_a_terminal_shows_the_count_and_clears(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress_module, "stderr_tty", lambda: True)
    with progress_module.progress("pruning finished workflows", total=10) as meter:
        meter.advance(4)
        meter.advance(3)
    text = err.getvalue()
    assert "pruning finished workflows" in text and "7/10" in text
