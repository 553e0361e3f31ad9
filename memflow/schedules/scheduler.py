"""The scheduler that runs inside every worker process: claims due ticks and starts their runs.

One per namespace and process (shared by the workers of that namespace). It sleeps until the
next tick of any schedule is due, until a NOTIFY says schedules changed, or until an open run
that a buffered tick waits for ends — with a slow safety poll. Ticks are claimed with
``FOR UPDATE SKIP LOCKED``, so the schedulers of many workers never start a tick twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from memflow.schedules import policy
from memflow.store import NamespaceStore
from memflow.store.schedules import NOTIFY_KEY, ScheduleRow, ScheduleUpdate

log = logging.getLogger("memflow.schedules")

BATCH = 50          # schedules claimed per transaction
BUSY_BACKOFF = 0.05  # first wait when a due schedule is held by another worker

# Asks the given workflow ids to cancel (``schedules.client.cancel_runs`` through a client,
# given by the worker: the scheduler sits below the client and does not make one itself).
CancelRuns = Callable[[list[str]], Awaitable[None]]


class Scheduler:
    """Starts the due ticks of one namespace's schedules."""

    def __init__(self, ns: NamespaceStore, poll: float = 10.0, cancel: CancelRuns | None = None):
        self.ns = ns
        self.poll = poll
        self.cancel = cancel
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._watched: dict[str, Callable[[], None]] = {}

    async def start(self) -> None:
        """Listen for schedule changes and start the loop."""
        notifier = self.ns.store.notifier
        self._unsubscribe = notifier.subscribe(self.ns.namespace, NOTIFY_KEY,
                                               lambda _k: self._wake.set())
        await notifier.wait_listening(self.ns.namespace)
        self._task = asyncio.create_task(self._loop(), name="memflow-scheduler")

    async def stop(self) -> None:
        """Stop claiming ticks (a tick in progress commits or rolls back as a whole)."""
        self._stopping = True
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._watch([])
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=5.0)
            if not done:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        busy = BUSY_BACKOFF
        while not self._stopping:
            self._wake.clear()
            try:
                done = await self.ns.schedules.tick_due(BATCH, _on_due)
                for update, _started in done:
                    if update.cancel and self.cancel is not None:
                        await self.cancel(list(update.cancel))
                if len(done) == BATCH:
                    continue
                due, blocking = await self.ns.schedules.schedule_wait()
            except Exception as exc:  # the store already retried through reconnects
                log.warning("running schedules failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if self._watch(blocking):
                continue  # a run may have ended before we listened for it: look again
            timeout = self.poll
            if due is not None:
                timeout = min(timeout, due + 0.001)
            if not done and due is not None and due <= 0.001:
                # a due schedule is held by another worker's tick: wait for it to commit
                timeout = busy
                busy = min(busy * 2, 1.0)
            else:
                busy = BUSY_BACKOFF
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _watch(self, workflow_ids: list[str]) -> bool:
        """Be woken when one of these runs ends (buffered ticks wait for them); True when
        some of them were not watched yet."""
        wanted = set(workflow_ids)
        for wf_id in list(self._watched):
            if wf_id not in wanted:
                self._watched.pop(wf_id)()
        new = wanted - set(self._watched)
        for wf_id in new:
            self._watched[wf_id] = self.ns.store.notifier.subscribe(
                self.ns.namespace, f"d:{wf_id}", lambda _k: self._wake.set())
        return bool(new)


def _on_due(row: ScheduleRow) -> ScheduleUpdate:
    """``policy.on_due``, except that a schedule it cannot handle is paused (with the reason
    as its note) instead of failing the ticks of every schedule claimed with it."""
    try:
        return policy.on_due(row)
    except Exception as exc:
        log.exception("schedule %s cannot run; pausing it", row.schedule_id)
        paused = dataclasses.replace(row, paused=True,
                                     note=f"paused by the scheduler: {type(exc).__name__}: {exc}")
        return ScheduleUpdate(row=paused, notify=True)


_shared: dict[tuple[int, str], tuple[Scheduler, int]] = {}


async def acquire(ns: NamespaceStore, poll: float = 10.0,
                  cancel: CancelRuns | None = None) -> Scheduler:
    """The scheduler of ``ns`` in this process, started on first use (one per namespace,
    shared by its workers); ``cancel`` asks runs to cancel for the ``cancel_other`` policy."""
    key = (id(ns.store), ns.namespace)
    found = _shared.get(key)
    if found is not None:
        _shared[key] = (found[0], found[1] + 1)
        return found[0]
    scheduler = Scheduler(ns, poll, cancel)
    _shared[key] = (scheduler, 1)
    await scheduler.start()
    return scheduler


async def release(scheduler: Scheduler) -> None:
    """A worker is done with its namespace's scheduler; the last one stops it."""
    key = (id(scheduler.ns.store), scheduler.ns.namespace)
    found = _shared.get(key)
    if found is None or found[0] is not scheduler:
        await scheduler.stop()
        return
    if found[1] > 1:
        _shared[key] = (scheduler, found[1] - 1)
        return
    del _shared[key]
    await scheduler.stop()
