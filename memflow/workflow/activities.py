"""``proxy_activities``: call activities from a workflow, as durable steps run by workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from memflow import payload, registry
from memflow.durations import parse_duration
from memflow.engine.thread import current_thread
from memflow.retry import RetryPolicy


class ActivityProxy:
    """Attribute access gives a callable per activity; each call is one durable step."""

    def __init__(self, known: dict[str, Callable[..., Any]], task_queue: str | None,
                 policy: RetryPolicy, timeout: float | None, heartbeat: float | None):
        self._known = known
        self._task_queue = task_queue
        self._policy = policy
        self._timeout = timeout
        self._heartbeat = heartbeat

    def __getattr__(self, name: str) -> Callable[..., asyncio.Future[Any]]:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args: self._call(name, list(args))

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self.__getattr__(name)

    def __iter__(self) -> Any:
        return iter(self.__getattr__(n) for n in self._known)

    def _call(self, name: str, args: list[Any]) -> Any:
        thread = current_thread(f"activity {name!r}")
        queue = self._task_queue or thread.ref.task_queue
        args_json = payload.dumps(args, f"arguments of activity {name!r}")
        interceptors = registry.activity_interceptors()
        if not interceptors:
            return self._schedule(thread, name, queue, args_json)

        from memflow.workflow.context import WorkflowContext

        activity_ctx = {"activity_name": name, "args": args, "task_queue": queue,
                        "workflow_id": thread.ref.workflow_id}
        workflow_ctx = WorkflowContext(thread)

        async def chain(i: int) -> Any:
            if i == len(interceptors):
                return await self._schedule(thread, name, queue, args_json)
            return await interceptors[i].execute(activity_ctx, workflow_ctx,
                                                 lambda: chain(i + 1))
        return thread.loop.create_task(chain(0))

    def _schedule(self, thread: Any, name: str, queue: str, args_json: str) -> Any:
        fn = self._known.get(name) or registry.find_activity(queue, name)
        decode = None
        if fn is not None:
            _, ret = payload.param_hints(fn)
            if ret is not None:
                def decode(v: Any, ret: Any = ret) -> Any:
                    return payload.decode_as(v, ret)
        task_payload = payload.dumps({
            "name": name, "policy": self._policy.to_dict(), "timeout": self._timeout,
            "heartbeat": self._heartbeat, "workflow_id": thread.ref.workflow_id,
        })
        task_payload = task_payload[:-1] + ',"args":' + args_json + "}"
        return thread.call("activity", name, {"queue": f"{queue}-activity",
                                              "payload": task_payload}, decode)


def proxy_activities(activities: Any = None, *, task_queue: str | None = None,
                     retry_policy: Any = None, start_to_close_timeout: Any = None,
                     heartbeat_timeout: Any = None) -> Any:
    """A proxy whose methods run activities durably through the ``<task_queue>-activity`` topic.

    ``activities`` (a dict, list, class, object or module) registers the functions in this
    process and gives the proxy their return types. May be called at module level or inside a
    workflow; calling an activity only works inside a workflow.
    """
    known = registry.register_activities(activities, task_queue) if activities is not None else {}
    if task_queue is not None and (not isinstance(task_queue, str) or not task_queue):
        raise ValueError("task_queue must be a non-empty string")
    policy = RetryPolicy.of(retry_policy)
    timeout = (parse_duration(start_to_close_timeout, "start_to_close_timeout")
               if start_to_close_timeout is not None else None)
    heartbeat = (parse_duration(heartbeat_timeout, "heartbeat_timeout")
                 if heartbeat_timeout is not None else None)
    return ActivityProxy(known, task_queue, policy, timeout, heartbeat)
