"""The live clients and workers of this process, so ``MemFlow.shutdown()`` can stop them all."""

from __future__ import annotations

from typing import Any

_live: list[Any] = []


def track(obj: Any) -> None:
    """Remember a worker or client until it stops."""
    _live.append(obj)


def untrack(obj: Any) -> None:
    """Forget a stopped worker or client."""
    if obj in _live:
        _live.remove(obj)


async def shutdown() -> None:
    """Stop every worker (draining work in flight), close every client and connection pool."""
    from memflow.store import Store

    for obj in list(reversed(_live)):
        stop = getattr(obj, "stop", None) or getattr(obj, "close", None)
        if stop is not None:
            await stop()
        untrack(obj)
    await Store.close_all()
