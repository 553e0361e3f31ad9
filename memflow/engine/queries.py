"""Answering queries: a worker claims the query requests of its queue when a NOTIFY
``y:<queue>`` says one arrived (no polling), and answers each from the workflow's current
state — its sticky-cache copy when that is current, else a replay of its history — without
recording anything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from memflow import payload
from memflow.engine.runner import PassRunner, UnknownWorkflowError
from memflow.engine.thread import ReadOnlyError, ThreadRun
from memflow.errors import QueryFailedError, error_to_dict
from memflow.store import NamespaceStore, Thread

log = logging.getLogger("memflow.worker")

CLAIM_BATCH = 20


class QueryServer:
    """Answers the queries addressed to runs of ``queues`` with ``runner``'s workflows."""

    def __init__(self, ns: NamespaceStore, queues: list[str], runner: PassRunner, owner: str):
        self.ns = ns
        self.queues = queues
        self.runner = runner
        self.owner = owner
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._unsubscribe: list[Callable[[], None]] = []

    async def start(self) -> None:
        """Listen for queries of the queues and answer those already waiting."""
        notifier = self.ns.store.notifier
        for queue in self.queues:
            self._unsubscribe.append(notifier.subscribe(
                self.ns.namespace, f"y:{queue}", lambda _k: self._wake.set()))
        await notifier.wait_listening(self.ns.namespace)
        self._wake.set()
        self._main = asyncio.create_task(self._loop(), name=f"memflow-queries-{self.queues}")

    async def stop(self) -> None:
        """Stop answering (queries in flight are finished, up to a few seconds)."""
        for unsub in self._unsubscribe:
            unsub()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=5)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                claimed = await self.ns.queries.claim(self.queues, self.owner, CLAIM_BATCH)
            except Exception as exc:  # the store already retried through reconnects
                log.warning("claiming queries failed: %s", exc)
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            for req in claimed:
                task = asyncio.create_task(self._answer(req))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if len(claimed) == CLAIM_BATCH:
                self._wake.set()

    async def _answer(self, req: dict[str, Any]) -> None:
        result_json = error_json = None
        try:
            value = await self.answer(req)
            result_json = payload.dumps(value, f"result of query {req['name']!r}")
        except QueryFailedError as exc:
            error_json = payload.dumps(error_to_dict(exc), "error")
        except Exception as exc:
            error_json = payload.dumps(error_to_dict(QueryFailedError(
                f"query {req['name']!r} failed: {exc}")), "error")
        try:
            await self.ns.queries.answer(req["query_id"], result_json, error_json)
        except Exception as exc:  # the asking client times out
            log.warning("answering query %s failed: %s", req["query_id"], exc)

    async def answer(self, req: dict[str, Any]) -> Any:
        """The value of query ``req`` (``run_id``, ``name``, ``args``, and the ``version`` and
        ``run_status`` of the run when the request was claimed)."""
        thread, replayed = await self._state_of(req)
        try:
            return _ask(thread, req["name"], list(req["args"] or []))
        finally:
            if replayed:
                thread.close()

    async def _state_of(self, req: dict[str, Any]) -> tuple[ThreadRun, bool]:
        cached = self.runner.cache.peek((req["run_id"], ""))
        if (cached is not None and req["run_status"] == "running"
                and req["version"] is not None and cached.version >= req["version"]):
            return cached, False  # current: nobody committed a pass since it was cached
        meta, steps = await self.ns.queries.load_run(req["run_id"])
        if meta is None:
            raise QueryFailedError(f"run {req['run_id']} no longer exists")
        try:
            thread = self.runner.build(
                Thread(meta["workflow_id"], meta["run_id"], "", meta["task_queue"]),
                meta["name"], meta["args"], meta["config"], meta["attempt"], steps)
        except UnknownWorkflowError as exc:
            raise QueryFailedError(str(exc)) from None
        thread.version = int(meta["version"])
        thread.clock = datetime.now(UTC)
        try:
            thread.run()  # replays the history; whatever new it would do is dropped
        except Exception as exc:
            thread.close()
            raise QueryFailedError(f"replaying workflow {meta['workflow_id']} to answer a "
                                   f"query failed: {exc}") from None
        return thread, True


def _ask(thread: ThreadRun, name: str, args: list[Any]) -> Any:
    fn = thread.query_handlers.get(name)
    if fn is None:
        raise QueryFailedError(
            f"workflow {thread.ref.workflow_id} has no query handler {name!r}; known: "
            f"{sorted(thread.query_handlers)}")
    try:
        return thread.read(fn, payload.decode_args(fn, args), f"query handler {name!r}")
    except ReadOnlyError as exc:
        raise QueryFailedError(f"query handler {name!r}: {exc}") from None
    except Exception as exc:
        raise QueryFailedError(f"query handler {name!r} failed: "
                               f"{type(exc).__name__}: {exc}") from None
