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


class StatementGroup:
    """Single-statement commits made in the same tick, sent as one transaction in one round
    trip (application-level group commit).

    If the group's transaction fails (one statement's ``ensure`` refused, a deadlock), nothing
    of it was written: each statement is then run again on its own, so one failure never
    affects the others.
    """

    def __init__(self, store: Any):
        self.store = store
        self._batch: list[tuple[str, Any, asyncio.Future[Any]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, sql: str, params: Any) -> dict[str, Any] | None:
        """Commit one statement (with others of this tick); returns its first row."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((sql, params, fut))
        result: dict[str, Any] | None = await fut
        return result

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.ensure_future(self._commit(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _commit(self, batch: list[tuple[str, Any, asyncio.Future[Any]]]) -> None:
        import psycopg
        from psycopg.rows import dict_row

        async def together(conn: Any) -> list[Any]:
            cursors = []
            async with conn.pipeline(), conn.transaction():
                for sql, params, _ in batch:
                    cur = conn.cursor(row_factory=dict_row)
                    await cur.execute(sql, params)
                    cursors.append(cur)
            return [await c.fetchone() if c.description else None for c in cursors]

        async def one(conn: Any, sql: str, params: Any) -> Any:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchone() if cur.description else None

        if len(batch) > 1:
            try:
                rows = await self.store.run(together, retry_for=0)
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None) is None:  # the connection: fail them all
                    _fail(batch, exc)
                    return
            except BaseException as exc:
                _fail(batch, exc)
                raise
            else:
                for (_, _, fut), row in zip(batch, rows, strict=True):
                    if not fut.done():
                        fut.set_result(row)
                return
        for sql, params, fut in batch:
            try:
                row = await self.store.run(lambda c, s=sql, p=params: one(c, s, p), retry_for=0)
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(row)


def _fail(batch: list[tuple[str, Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for *_, fut in batch:
        if not fut.done():
            fut.set_exception(exc)
