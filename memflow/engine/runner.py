"""Workflow passes: resume (or rebuild) a thread, run it until blocked, commit, repeat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from memflow import payload
from memflow.engine.cache import ThreadCache
from memflow.engine.thread import NonDeterminismError, ThreadRun
from memflow.errors import (
    NON_RETRYABLE,
    MemFlowError,
    MemFlowFatalError,
    MemFlowMaxedError,
    WorkflowInterruption,
    error_to_dict,
)
from memflow.retry import RetryPolicy
from memflow.store import NamespaceStore, Task, Thread
from memflow.store.passes import thread_open

log = logging.getLogger("memflow.worker")

WORKFLOW_RETRY_DEFAULT = RetryPolicy(maximum_attempts=1)

# Builds the coroutine that runs a thread's function (interceptors wrap it); set by the
# workflow package so the engine does not import user-facing modules.
MainFactory = Callable[[ThreadRun, Callable[..., Any]], Callable[[], Any]]


class UnknownWorkflowError(LookupError):
    """A pass arrived for a workflow function this worker does not have."""


class PassRunner:
    """Runs the workflow passes of one worker."""

    def __init__(self, ns: NamespaceStore, functions: dict[str, Callable[..., Any]],
                 cache: ThreadCache, make_main: MainFactory):
        self.ns = ns
        self.functions = functions
        self.cache = cache
        self.make_main = make_main
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def run(self, task: Task) -> None:
        """Handle one claimed pass task to the end (the task is deleted or re-released)."""
        key = (task.run_id, task.dim)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await self._run(task)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def _run(self, task: Task) -> None:
        thread = await self._resume(task)
        if thread is None:
            await self.ns.delete_task(task.id)
            return
        wake = task.wake
        try:
            while True:
                thread.run()
                if thread.done:
                    await self._finish(thread, task)
                    return
                commands, delivered = thread.take_commands()
                immediate = any(c.immediate for c in commands)
                outcome = await self.ns.commit_pass(
                    thread.ref, commands, delivered, None if immediate else (task.id, wake))
                if not outcome.alive:
                    thread.close()
                    return
                if immediate:
                    thread.deliver([_row(i, r) for i, r in sorted(outcome.results.items())])
                    continue
                if outcome.wake is None:
                    self.cache.put(thread)
                    thread = None
                    return
                wake = outcome.wake
                refreshed = await self._refresh(thread)
                if refreshed is None:
                    thread.close()
                    thread = await self._rebuild(task)
                    if thread is None:
                        return
                else:
                    thread = refreshed
        except BaseException:
            if thread is not None:
                thread.close()
            raise

    async def _resume(self, task: Task) -> ThreadRun | None:
        cached = self.cache.take((task.run_id, task.dim))
        if cached is not None:
            refreshed = await self._refresh(cached)
            if refreshed is not None:
                return refreshed
            cached.close()
        return await self._rebuild(task)

    async def _refresh(self, thread: ThreadRun) -> ThreadRun | None:
        """Bring a blocked thread up to date with the database, or None if it is stale."""
        rows = await self.ns.load_steps(thread.ref.run_id, thread.ref.dim,
                                        list(thread.pending), thread.counter)
        if any(r["idx"] >= thread.counter or r.get("seq") is not None for r in rows):
            return None
        thread.deliver(rows)
        return thread

    async def _rebuild(self, task: Task) -> ThreadRun | None:
        meta, steps = await self.ns.load_thread(task.run_id, task.dim)
        if meta is None or meta["status"] != "running" or not thread_open(
                meta["run_status"], meta["signal_in"], task.dim):
            return None
        fn = self.functions.get(meta["name"])
        if fn is None:
            raise UnknownWorkflowError(
                f"workflow {meta['name']!r} is not registered on this worker "
                f"(task queue {meta['task_queue']!r})")
        thread = ThreadRun(
            ref=Thread(meta["workflow_id"], meta["run_id"], meta["dim"], meta["task_queue"]),
            name=meta["name"], namespace=self.ns.namespace, args=list(meta["args"] or []),
            config=meta["config"] or {}, attempt=meta["attempt"],
            history={s["idx"]: s for s in steps})
        thread.start(self.make_main(thread, fn))
        return thread

    async def _finish(self, thread: ThreadRun, task: Task) -> None:
        commands, delivered = thread.take_commands()
        if commands or delivered:
            outcome = await self.ns.commit_pass(thread.ref, commands, delivered, None)
            if not outcome.alive:
                thread.close()
                return
        assert thread.task is not None
        exc = thread.task.exception() if not thread.task.cancelled() else WorkflowInterruption()
        if exc is None:
            try:
                result_json = payload.dumps(thread.task.result(), "workflow result")
            except (TypeError, ValueError) as err:
                await self._fail(thread, MemFlowFatalError(str(err)))
                return
            await self.ns.finish_thread(thread.ref, "completed", result_json, None)
        elif isinstance(exc, WorkflowInterruption | asyncio.CancelledError):
            await self.ns.delete_task(task.id)
        elif isinstance(exc, NON_RETRYABLE):
            assert isinstance(exc, MemFlowError)
            await self._fail(thread, exc)
        elif isinstance(exc, NonDeterminismError):
            await self._fail(thread, MemFlowFatalError(str(exc)))
        else:
            await self._retry_or_fail(thread, task, exc)
        thread.close()

    async def _retry_or_fail(self, thread: ThreadRun, task: Task, exc: BaseException) -> None:
        try:
            policy = RetryPolicy.of(thread.config or None, WORKFLOW_RETRY_DEFAULT)
        except (TypeError, ValueError):
            policy = WORKFLOW_RETRY_DEFAULT
        if thread.ref.dim == "" and thread.attempt < policy.maximum_attempts:
            delay = policy.delay(thread.attempt)
            log.info("workflow %s failed (attempt %d of %d), retrying in %.1fs: %s",
                     thread.ref.workflow_id, thread.attempt, policy.maximum_attempts, delay, exc)
            await self.ns.retry_workflow(thread.ref.run_id, task.id, delay)
            return
        err = MemFlowMaxedError(str(exc))
        err.stack = error_to_dict(exc)["stack"]
        await self._fail(thread, err)

    async def _fail(self, thread: ThreadRun, err: MemFlowError) -> None:
        doc = error_to_dict(err)
        await self.ns.finish_thread(thread.ref, "failed", None, payload.dumps(doc, "error"))


def _row(idx: int, row: dict[str, Any]) -> dict[str, Any]:
    """A step row for an immediate result (statements without a status report 'done')."""
    if "status" in row:
        return {"idx": idx, "status": row["status"], "result": row.get("result"),
                "error": row.get("error")}
    return {"idx": idx, "status": "done", "result": None, "error": None}
