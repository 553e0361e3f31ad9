"""Running activities and firing timers: the worker side of activity and timer steps."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from memflow import activity, observe, payload, registry
from memflow.errors import (
    NON_RETRYABLE,
    MemFlowFatalError,
    MemFlowRetryError,
    error_to_dict,
)
from memflow.retry import RetryPolicy
from memflow.store import NamespaceStore, Task

log = logging.getLogger("memflow.activity")


Outcome = tuple[str, str | None, str | None]


async def run_activity(ns: NamespaceStore, task: Task, owner: str) -> Outcome | None:
    """Run one activity attempt. Returns the step's outcome ``(status, result, error)`` to
    record, or None when the attempt failed and the task was released for a retry."""
    p = task.payload or {}
    name = p.get("name", "?")
    base = task.queue.removesuffix("-activity")
    policy = RetryPolicy.of(p.get("policy"))
    fn = registry.find_activity(base, name, p.get("ref"))
    with observe.activity_attempt(ns.namespace, task, name) as attempt:
        try:
            if fn is None:
                raise MemFlowRetryError(
                    f"unknown activity {name!r} on queue {task.queue!r}: register it when the "
                    "worker starts (Worker.create(activities=...), register_activity_worker, or "
                    "proxy_activities(activities=...) at module level)")
            info = activity.ActivityInfo(name, task.attempts, p.get("workflow_id", ""), base,
                                         ns.namespace, run_id=task.run_id)
            # the run's cancellation drops this task and says so (memflow.store.control)
            told = ns.store.notifier.subscribe(ns.namespace, f"c:{task.run_id}",
                                               lambda _k: info.request_cancel())
            try:
                result = await _invoke(fn, list(p.get("args") or []), info, p.get("timeout"),
                                       p.get("heartbeat"))
            except asyncio.CancelledError:
                if not info.cancel_requested:
                    raise
                log.info("activity %s of cancelled run %s stopped", name, task.run_id)
                return None  # abandoned: its task is gone, nothing to record
            finally:
                told()
            try:
                result_json = payload.dumps(result, f"result of activity {name!r}")
            except (TypeError, ValueError) as exc:
                raise MemFlowFatalError(str(exc)) from None
        except Exception as exc:
            attempt.failed(exc, _retrying(task, policy, exc))
            return await _failed(ns, task, owner, name, policy, exc)
    return "done", result_json, None


def _retrying(task: Task, policy: RetryPolicy, exc: Exception) -> bool:
    return not isinstance(exc, NON_RETRYABLE) and task.attempts < policy.maximum_attempts


async def _failed(ns: NamespaceStore, task: Task, owner: str, name: str, policy: RetryPolicy,
                  exc: Exception) -> Outcome | None:
    final = isinstance(exc, NON_RETRYABLE)
    if _retrying(task, policy, exc):
        delay = policy.delay(task.attempts)
        log.info("activity %s failed (attempt %d of %d), retrying in %.2fs: %s",
                 name, task.attempts, policy.maximum_attempts, delay, exc,
                 extra={"workflow_id": (task.payload or {}).get("workflow_id", ""),
                        "run_id": task.run_id, "activity_name": name,
                        "attempt": task.attempts})
        await ns.tasks.release(task, owner, delay)
        return None
    if not final:
        fatal = MemFlowFatalError(str(exc))
        fatal.stack = error_to_dict(exc)["stack"]
        exc = fatal
    doc = error_to_dict(exc)
    if policy.throw_on_error:
        return "failed", None, payload.dumps(doc, "error")
    return "done", payload.dumps({"$error": doc}, "error"), None


async def _invoke(fn: Callable[..., Any], args: list[Any], info: activity.ActivityInfo,
                  timeout: float | None, heartbeat: float | None) -> Any:
    args = payload.decode_args(fn, args)
    ctx = contextvars.copy_context()
    ctx.run(activity._current.set, info)
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)):  # noqa: B004
        work: asyncio.Future[Any] = asyncio.get_running_loop().create_task(
            fn(*args), context=ctx)
    else:
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(None, functools.partial(ctx.run, fn, *args))
    if timeout is None and heartbeat is None:
        return await work
    started = time.monotonic()
    while True:
        wait = 0.25 if heartbeat else (timeout or 0.25)
        if timeout is not None:
            wait = min(wait, max(0.0, started + timeout - time.monotonic()))
        done, _ = await asyncio.wait({work}, timeout=wait)
        if done:
            result = work.result()
            if inspect.isawaitable(result):
                result = await result
            return result
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            work.cancel()
            raise MemFlowRetryError(f"activity {info.activity_name!r} timed out after "
                                    f"{timeout:g}s (start_to_close_timeout)")
        if heartbeat is not None and now - info.last_heartbeat > heartbeat:
            work.cancel()
            raise MemFlowRetryError(f"activity {info.activity_name!r} missed its heartbeat "
                                    f"({heartbeat:g}s heartbeat_timeout)")


def timer_outcome(task: Task) -> Outcome:
    """What a due timer settles its step with: a sleep's result, or a wait's timeout error."""
    p = task.payload or {}
    if "error" in p:
        return "failed", None, payload.dumps(p["error"])
    return "done", payload.dumps(p.get("result")), None


async def time_out(ns: NamespaceStore, task: Task, owner: str) -> bool:
    """A run's deadline task came due: fail the run with its ``MemFlowTimeoutError`` (status
    ``timed_out``; its tasks dropped) and cancel its exec_child children. False when the run
    had already ended."""
    error = (task.payload or {}).get("error") or {
        "message": f"run {task.run_id} timed out", "code": 596, "type": "MemFlowTimeoutError",
        "stack": ""}
    message = f"the parent run timed out: {error.get('message')}"
    ended = await ns.control.time_out(
        task, owner, payload.dumps(error, "error"), payload.dumps({"message": message}),
        payload.dumps({"message": message, "code": 499, "type": "CancelledError", "stack": ""}))
    if ended:
        log.info("workflow run %s timed out: %s", task.run_id, error.get("message"))
    return ended
