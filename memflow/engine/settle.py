"""Settling a thread's awaited calls: with a step's recorded result or error, or — after its
run was cancelled — with ``asyncio.CancelledError``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from memflow.errors import error_from_dict


def settle(fut: asyncio.Future[Any], decode: Callable[[Any], Any] | None,
           row: dict[str, Any]) -> None:
    """Settle ``fut`` with step ``row``: its result (through ``decode``), its error, or a
    cancellation when the step was failed by the run's cancellation (``CancelledError``)."""
    if fut.done():
        return
    error = row.get("error") or {}
    if row["status"] == "failed" and error.get("type") == "CancelledError":
        fut.cancel(error.get("message"))
        return
    if row["status"] == "failed":
        fut.set_exception(error_from_dict(error))
        return
    value = row.get("result")
    if decode is not None:
        try:
            value = decode(value)
        except Exception as exc:
            fut.set_exception(exc)
            return
    fut.set_result(value)


def cancel_all(futures: list[asyncio.Future[Any]], message: str | None) -> None:
    """Cancel every call still awaited: ``asyncio.CancelledError`` where the code waits."""
    for fut in futures:
        if not fut.done():
            fut.cancel(message)
