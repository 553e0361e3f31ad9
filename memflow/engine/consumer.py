"""The claim loop of a worker: lease tasks of some queues, run them, keep their leases alive.

It sleeps until a NOTIFY names one of its queues, the next task becomes due (timers, retries,
expired leases) or, as a safety net, a slow poll interval passes. There is no fast polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from memflow import observe, payload
from memflow.errors import error_to_dict
from memflow.store import NamespaceStore, Task

log = logging.getLogger("memflow.worker")


class Consumer:
    """Claims and runs tasks of ``queues`` in one namespace, up to ``concurrency`` at once.

    A task whose handler raises (a failure inside the engine, not a user activity error) is
    given back with backoff (``failure_backoff`` seconds, doubled each time, at most 30 s), and
    parked with its error after ``max_failures`` such failures (see docs/workers.md).
    """

    def __init__(self, ns: NamespaceStore, queues: list[str],
                 handler: Callable[[Task], Awaitable[None]], *, concurrency: int = 100,
                 lease: float = 30.0, poll: float = 10.0, batch: int = 50,
                 max_failures: int = 10, failure_backoff: float = 1.0):
        self.ns = ns
        self.queues = queues
        self.handler = handler
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.batch = batch
        self.max_failures = max_failures
        self.failure_backoff = failure_backoff
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self.inflight: dict[int, asyncio.Task[None]] = {}
        self.leases: set[int] = set()  # tasks held outside ``inflight`` (held passes)
        self.limited: list[str] = []  # which of the queues have limits (as last seen)
        self.reserved = 0  # slots promised to tasks about to be spawned (see ``reserve``)
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    async def start(self) -> None:
        """Subscribe to the queues' notifications and start claiming."""
        notifier = self.ns.store.notifier
        for queue in self.queues:
            self._unsubscribe.append(
                notifier.subscribe(self.ns.namespace, f"q:{queue}", lambda _k: self._wake.set()))
        await notifier.wait_listening(self.ns.namespace)
        self.limited = (await self.ns.tasks.wake_plan(self.queues))[1]
        self._main = asyncio.create_task(self._loop(), name=f"memflow-consumer-{self.queues}")
        self._keeper = asyncio.create_task(self._keep_leases(), name="memflow-leases")

    async def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop claiming; with ``drain`` wait for the tasks in flight (up to ``timeout``)."""
        self._stopping = True
        self._wake.set()
        for unsub in self._unsubscribe:
            unsub()
        if self._main is not None:
            # a claim stuck retrying through a lost connection must not hold up the stop
            done, _ = await asyncio.wait({self._main}, timeout=2.0)
            if not done:
                self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        running = list(self.inflight.values())
        if running and drain:
            await asyncio.wait(running, timeout=timeout)
        for t in self.inflight.values():
            t.cancel()
        if self.inflight:
            await asyncio.wait(list(self.inflight.values()), timeout=5)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            room = self.concurrency - len(self.inflight) - self.reserved
            claimed = 0
            limit = min(room, self.batch)
            token_in: float | None = None
            if room > 0:
                try:
                    got = await self.ns.tasks.claim_flow(self.queues, self.owner, self.lease,
                                                         limit, self.limited)
                except Exception as exc:  # the store already retried through reconnects
                    log.warning("claiming tasks failed: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                tasks, token_in = got.tasks, got.token_in
                observe.metrics.claimed(self.ns.namespace, tasks)
                claimed = len(tasks)
                for task in tasks:
                    self.inflight[task.id] = asyncio.create_task(self._handle(task))
                if claimed == limit:
                    continue
            timeout = self.poll
            if room > 0:
                try:
                    due, limited = await self.ns.tasks.wake_plan(self.queues)
                except Exception:
                    due, limited = None, self.limited
                if limited != self.limited:  # limits set or removed: claim again at once
                    self.limited = limited
                    continue
                if due is not None:
                    timeout = min(timeout, due + 0.001)
                if token_in is not None:  # a rate-limited queue: wake when its token frees
                    timeout = min(timeout, token_in + 0.001)
            if timeout <= 0.001 and claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def wake(self) -> None:
        """Look for work now (as a NOTIFY naming one of the queues would)."""
        self._wake.set()

    def reserve(self, wanted: int, handover: int = 0) -> int:
        """Promise up to ``wanted`` of this consumer's free slots to tasks about to be created
        leased to it and then ``spawn``-ed; returns how many it promised (give back the unused
        ones with ``unreserve``). ``handover`` counts slots the caller is about to free (the
        task it is handling, which ends once its pass has committed), so the common step —
        a pass that schedules one activity and ends — keeps its fast path on a busy worker.
        So work a pass schedules for itself (a wide ``gather`` of activities) never puts much
        more than ``concurrency`` tasks in flight here: the rest waits in the queue, for any
        worker."""
        handed = min(wanted, handover)  # already counted in ``inflight``
        extra = max(0, min(wanted - handed, self.concurrency - len(self.inflight)
                           - self.reserved))
        self.reserved += extra
        return handed + extra

    def unreserve(self, count: int) -> None:
        """Give back ``count`` promised slots beyond the handed-over ones (their tasks were
        spawned, or not created)."""
        self.reserved = max(0, self.reserved - count)

    def spawn(self, task: Task) -> None:
        """Run a task this worker already holds the lease of (no claim needed)."""
        if task.id not in self.inflight:
            self.inflight[task.id] = asyncio.create_task(self._handle(task))

    async def _handle(self, task: Task) -> None:
        try:
            await self.handler(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task %s (%s on %s) failed: %s", task.id, task.kind, task.queue, exc)
            with contextlib.suppress(Exception):
                failures, parked = await self.ns.poison.fail_task(
                    task, self.owner, payload.dumps(error_to_dict(exc), "error"),
                    self.max_failures, self.failure_backoff)
                if parked:
                    log.error("task %s (%s on %s) of run %s failed %d times: parked (%s)",
                              task.id, task.kind, task.queue, task.run_id, failures, exc)
        finally:
            self.inflight.pop(task.id, None)
            self._wake.set()

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            ids = sorted(set(self.inflight) | self.leases)
            if ids:
                try:
                    await self.ns.tasks.extend(ids, self.owner, self.lease)
                except Exception as exc:
                    log.warning("extending leases failed: %s", exc)
