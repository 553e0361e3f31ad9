"""``WorkflowEnvironment``: a fresh namespace with its client and workers, for tests.

``start_time_skipping()`` gives the namespace a movable engine clock and skips its idle time;
``start_local()`` runs in real time. Either way the namespace is dropped at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from memflow.client import Client
from memflow.connection import Connection, resolve_dsn
from memflow.durations import parse_duration
from memflow.store import NamespaceStore, Store
from memflow.store.testclock import MovableClock, drop_namespace
from memflow.testing.skipper import AutoSkipper
from memflow.worker import Worker

log = logging.getLogger("memflow.testing")


class _OwnConnection(Connection):
    """A connection whose clients and workers all use the environment's own pool."""

    def __init__(self, dsn: str, store: Store):
        super().__init__(dsn)
        self._store = store

    async def store(self, role: str = "client") -> Store:
        """The environment's pool (whatever the role)."""
        return self._store


class WorkflowEnvironment:
    """A namespace of its own, a client on it and the workers started by ``worker()``.

    Use it as ``async with await WorkflowEnvironment.start_time_skipping() as env: ...``.
    """

    def __init__(self, connection: Connection, store: Store, namespace: str,
                 clock: MovableClock | None):
        self.connection = connection
        self.namespace = namespace
        self.client = Client(connection=connection, namespace=namespace)
        self._store = store
        self._clock = clock
        self._skew = 0.0
        self._skipper = (AutoSkipper(clock, self._set_skew, self._wake_workers)
                         if clock is not None else None)
        self._workers: list[Worker] = []
        self._closed = False

    @property
    def supports_time_skipping(self) -> bool:
        """True for an environment from ``start_time_skipping()``."""
        return self._skipper is not None

    @classmethod
    async def start_time_skipping(cls, connection: Any = None) -> WorkflowEnvironment:
        """An environment whose clock jumps over idle time (see docs/testing.md)."""
        return await cls._start(connection, skipping=True)

    @classmethod
    async def start_local(cls, connection: Any = None) -> WorkflowEnvironment:
        """An environment that runs in real time."""
        return await cls._start(connection, skipping=False)

    @classmethod
    async def _start(cls, connection: Any, skipping: bool) -> WorkflowEnvironment:
        dsn = await resolve_dsn(connection)
        store = Store(dsn, "test")
        await store.open()
        namespace = f"test_{uuid.uuid4().hex[:20]}"
        try:
            await NamespaceStore.open(store, namespace)
            clock = MovableClock(store, namespace) if skipping else None
            if clock is not None:
                await clock.make_movable()
            env = cls(_OwnConnection(dsn, store), store, namespace, clock)
            if env._skipper is not None:
                await env._skipper.start(store.notifier, namespace)
        except BaseException:
            with contextlib.suppress(Exception):
                await drop_namespace(store, namespace)
            await store.close()
            raise
        return env

    async def worker(self, task_queue: str = "default", workflow: Any = None,
                     options: dict[str, Any] | None = None,
                     activities: Any = None) -> Worker:
        """Start a worker on the environment's namespace (``Worker.create``'s keywords, without
        ``connection`` and ``namespace``); it is stopped when the environment shuts down."""
        if self._closed:
            raise RuntimeError("this WorkflowEnvironment is shut down")
        worker = await Worker.create(connection=self.connection, task_queue=task_queue,
                                     workflow=workflow, namespace=self.namespace,
                                     options=options, activities=activities)
        if self._skipper is not None:
            worker.consumer.handler = self._skipper.wrap(worker.consumer.handler)
        self._workers.append(worker)
        return worker

    def now(self) -> datetime:
        """The environment's clock (UTC): real time, plus every skip so far."""
        return datetime.now(UTC) + timedelta(seconds=self._skew)

    async def sleep(self, duration: Any) -> None:
        """Let ``duration`` pass on the environment's clock (``"3 days"``, seconds, timedelta).

        With time skipping, the clock moves forward as soon as nothing runs, stopping at each
        timer due on the way so that the workflows react in order; without it, a real sleep.
        """
        seconds = parse_duration(duration, "sleep duration")
        if self._skipper is None:
            await asyncio.sleep(seconds)
            return
        skipper = self._skipper
        target = self.now() + timedelta(seconds=seconds)
        skipper.caps.append(target)
        try:
            while True:
                outcome = await skipper.skip(target)
                if outcome.clock >= target:
                    return
                await skipper.wait_change()
        finally:
            skipper.caps.remove(target)

    @contextlib.contextmanager
    def auto_time_skipping_disabled(self) -> Iterator[None]:
        """Within this block the clock only moves with real time and ``sleep()``."""
        if self._skipper is None:
            yield
            return
        self._skipper.paused += 1
        try:
            yield
        finally:
            self._skipper.paused -= 1
            self._skipper.poke()

    def _set_skew(self, skew: float) -> None:
        self._skew = skew

    def _wake_workers(self) -> None:
        for worker in self._workers:
            worker.consumer.wake()

    async def shutdown(self) -> None:
        """Stop the workers, drop the namespace and close the environment's connections."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._skipper is not None:
                await _bounded(self._skipper.stop(), "stopping the time skipper")
            for worker in reversed(self._workers):
                await _bounded(worker.stop(), "stopping a worker", 40.0)
            await _bounded(self.client.close(), "closing the client")
            await _bounded(drop_namespace(self._store, self.namespace), "dropping the namespace")
        finally:
            await _bounded(self._store.close(), "closing the connections")

    async def __aenter__(self) -> WorkflowEnvironment:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.shutdown()


async def _bounded(step: Any, what: str, seconds: float = 10.0) -> None:
    """One step of the shutdown, given up (with a warning) when it takes longer than
    ``seconds``: a test's teardown must never hang."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("test environment: %s took longer than %gs; going on", what, seconds)
