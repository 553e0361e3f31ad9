"""Reads by key made in the same event-loop tick, answered by one statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class TickBatcher:
    """``await get(key)`` calls made in one tick share one ``fetch(keys)`` call."""

    def __init__(self, fetch: Callable[[list[Any]], Awaitable[dict[Any, Any]]]):
        self._fetch = fetch
        self._waiting: dict[Any, list[asyncio.Future[Any]]] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: Any) -> Any:
        """The value ``fetch`` returns for ``key`` (None when it has none)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.setdefault(key, []).append(fut)
        return await fut

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, {}
        task = asyncio.ensure_future(self._answer(waiting))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, waiting: dict[Any, list[asyncio.Future[Any]]]) -> None:
        try:
            found = await self._fetch(list(waiting))
        except BaseException as exc:
            for futs in waiting.values():
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(exc)
            return
        for key, futs in waiting.items():
            for fut in futs:
                if not fut.done():
                    fut.set_result(found.get(key))
