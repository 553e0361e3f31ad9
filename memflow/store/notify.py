"""LISTEN/NOTIFY: one listening connection per DSN, fanning notifications out to waiters.

Channels are namespaces; payloads are ``q:<queue>`` (work is ready), ``d:<workflow_id>`` (a
workflow finished or changed state) and ``e:<topic>`` (an event was emitted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

import psycopg

from memflow.observe import metrics

log = logging.getLogger("memflow.notify")

Callback = Callable[[str], None]


class Notifier:
    """Listens on namespace channels and calls the subscribers of each payload."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._subs: dict[tuple[str, str], set[Callback]] = defaultdict(set)
        self._channels: set[str] = set()
        self._listening: set[str] = set()
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Start the listening task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="memflow-notifier")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    def subscribe(self, channel: str, key: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(key)`` on each notification ``key`` on ``channel``; returns unsubscribe.

        The callback is also called after a reconnection, since notifications may have been
        missed while the listener was down.
        """
        self._subs[(channel, key)].add(callback)
        self._channels.add(channel)

        def unsubscribe() -> None:
            subs = self._subs.get((channel, key))
            if subs is not None:
                subs.discard(callback)
                if not subs:
                    del self._subs[(channel, key)]
        return unsubscribe

    async def wait_listening(self, channel: str, timeout: float = 10.0) -> None:
        """Wait until ``channel`` is being listened to (so no notification is missed after)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while channel not in self._listening:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.005)

    def _fire_all(self) -> None:
        for (_channel, key), subs in list(self._subs.items()):
            for cb in list(subs):
                cb(key)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, application_name="memflow-listener")
                self._listening.clear()
                delay = 0.05
                self.connected.set()
                self._fire_all()
                await self._listen_loop(self._conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                self._listening.clear()
                log.warning("notification listener lost its connection (%s)", exc)
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _listen_loop(self, conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        probe_at = loop.time() + 5.0
        while True:
            for channel in sorted(self._channels - self._listening):
                await conn.execute(f'LISTEN "{channel}"')
                self._listening.add(channel)
            async for note in conn.notifies(timeout=0.1):
                self._dispatch(note.channel, note.payload)
            if loop.time() > probe_at:
                # a cheap liveness probe so a dead connection is noticed within seconds
                await conn.execute("SELECT 1")
                probe_at = loop.time() + 5.0

    def _dispatch(self, channel: str, payload: str) -> None:
        if (channel, payload) in self._subs:
            metrics.notified(payload)
        for cb in list(self._subs.get((channel, payload), ())):
            cb(payload)
        for cb in list(self._subs.get((channel, "*"), ())):
            cb(payload)
