"""Durable calls beyond activities: timers, signals, child workflows, parallel awaits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from memflow import payload
from memflow.commands import ExecChild, SendSignal, Sleep, StartChild, WaitForSignal
from memflow.durations import parse_duration
from memflow.engine.thread import current_thread
from memflow.errors import MemFlowTimeoutError
from memflow.ids import check_id, check_queue, function_name
from memflow.observe import tracing
from memflow.workflow.timeouts import workflow_timeout


def sleep_for(duration: str | float | timedelta) -> asyncio.Future[float]:
    """Sleep durably; returns the seconds slept. The workflow holds no memory meanwhile."""
    seconds = parse_duration(duration, "sleep_for duration")
    thread = current_thread("workflow.sleep_for()")
    return thread.call(Sleep(thread.counter, seconds),
                       lambda v: float(v) if v is not None else seconds)


def wait_for(signal_id: str, timeout: Any = None) -> asyncio.Future[Any]:
    """Wait durably for the signal ``signal_id``; returns its data.

    A signal sent before the wait is kept and delivered to it. With ``timeout``, a
    ``MemFlowTimeoutError`` is raised in the workflow when the time runs out.
    """
    check_id(signal_id, "signal_id")
    thread = current_thread("workflow.wait_for()")
    if timeout is None:
        return thread.call(WaitForSignal(thread.counter, signal_id))
    seconds = parse_duration(timeout, "wait_for timeout")
    err = MemFlowTimeoutError(f"wait_for({signal_id!r}) timed out after {seconds:g}s")
    return thread.call(WaitForSignal(thread.counter, signal_id, seconds,
                                     payload.dumps({"error": err.to_dict()})))


def signal(signal_id: str, data: Any = None) -> asyncio.Future[Any]:
    """Send a signal from the workflow, exactly once across replays."""
    check_id(signal_id, "signal_id")
    thread = current_thread("workflow.signal()")
    data_json = payload.dumps(data, "signal data")
    return thread.call(SendSignal(thread.counter, signal_id, data_json))


def _child(kind: str, args: Any, task_queue: Any, workflow_name: Any, workflow_id: Any,
           entity: Any, expire: Any, signal_in: Any, config: Any, search: Any,
           execution_timeout: Any = None, run_timeout: Any = None) -> Any:
    thread = current_thread(f"workflow.{kind}()")
    name = function_name(workflow_name, f"{kind}: workflow_name")
    queue = check_queue(task_queue, f"{kind}: task_queue") if task_queue is not None else (
        thread.ref.task_queue)
    idx = thread.counter
    child_id = workflow_id or f"{thread.ref.workflow_id}-{name}-{thread.ref.dim}{idx}"
    check_id(child_id, "workflow_id")
    if not isinstance(args, list | tuple):
        raise TypeError(f"{kind}: args must be a list")
    dup = {"message": f"Duplicate job: {child_id}", "code": 409, "type": "DuplicateJobError",
           "workflow_id": child_id}
    timeout_s, timeout_payload = workflow_timeout(execution_timeout, run_timeout, child_id)
    record = ExecChild if kind == "exec_child" else StartChild
    return thread.call(record(
        idx, workflow_id=child_id, run_id=f"{thread.ref.run_id}/{thread.ref.dim}/{idx}",
        workflow_name=name, task_queue=queue,
        args_json=payload.dumps(list(args), f"arguments of child workflow {name!r}"),
        entity_type=entity, search_json=payload.dumps((search or {}).get("data", {}), "search"),
        config_json=payload.dumps(config or {}, "config"), signal_in=signal_in,
        expire_seconds=parse_duration(expire, "expire") if expire is not None else 1.0,
        trace_json=tracing.thread_carrier_json(thread) if thread.trace is not None else None,
        duplicate_error_json=payload.dumps(dup), timeout_seconds=timeout_s,
        timeout_payload_json=timeout_payload))


def exec_child(args: Any = (), task_queue: str | None = None, workflow_name: Any = None,
               workflow_id: str | None = None, entity: str | None = None, expire: Any = None,
               signal_in: Any = None, config: dict[str, Any] | None = None,
               search: dict[str, Any] | None = None, execution_timeout: Any = None,
               run_timeout: Any = None) -> asyncio.Future[Any]:
    """Start a child workflow and wait for its result (its failure is raised here).
    ``execution_timeout``/``run_timeout`` bound the child as they do a client start."""
    return _child("exec_child", args, task_queue, workflow_name, workflow_id, entity, expire,
                  signal_in, config, search, execution_timeout, run_timeout)


execute_child = exec_child


def start_child(args: Any = (), task_queue: str | None = None, workflow_name: Any = None,
                workflow_id: str | None = None, entity: str | None = None, expire: Any = None,
                signal_in: Any = None, config: dict[str, Any] | None = None,
                search: dict[str, Any] | None = None, execution_timeout: Any = None,
                run_timeout: Any = None) -> asyncio.Future[Any]:
    """Start a child workflow without waiting for it; returns the child's workflow id."""
    return _child("start_child", args, task_queue, workflow_name, workflow_id, entity, expire,
                  signal_in, config, search, execution_timeout, run_timeout)


async def all(*awaitables: Awaitable[Any]) -> list[Any]:
    """Await several durable calls in parallel (``asyncio.gather``)."""
    return list(await asyncio.gather(*awaitables))
