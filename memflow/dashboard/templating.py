"""The Jinja2 environment (autoescaping everything) and the filters the templates use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
MAX_JSON_CHARS = 200_000


def when(value: datetime | None) -> str:
    """A time in UTC, to the second (empty for None)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    if value < 86400:
        return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"
    return f"{int(value // 86400)} d {int(value % 86400 // 3600)} h"


def elapsed(start: datetime | None, end: datetime | None) -> str:
    """How long from ``start`` to ``end`` (to now when ``end`` is None)."""
    if start is None:
        return ""
    return seconds(((end or datetime.now(UTC)) - start).total_seconds())


def pretty(value: Any) -> str:
    """A JSON value, indented (cut at 200,000 characters); escaped later by autoescape."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_JSON_CHARS:
        return text[:MAX_JSON_CHARS] + f"\n… ({len(text) - MAX_JSON_CHARS:,} more characters)"
    return text


def compact(value: Any, limit: int = 120) -> str:
    """A JSON value on one line, shortened to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def query(params: dict[str, Any]) -> str:
    """``?k=v&…`` of the params that are set (URL-encoded; autoescape handles the ``&``)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def environment() -> jinja2.Environment:
    """The dashboard's template environment: autoescape on for every template."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(when=when, seconds=seconds, pretty=pretty, compact=compact)
    env.globals.update(elapsed=elapsed, query=query)
    return env
