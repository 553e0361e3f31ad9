"""``proxy_activities``: call activities from a workflow, as durable steps run by workers."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from memflow import payload, registry
from memflow.commands import ActivityCall
from memflow.durations import parse_duration
from memflow.engine.thread import current_thread
from memflow.ids import check_concurrency_key, check_priority, check_queue
from memflow.observe import tracing
from memflow.retry import RetryPolicy
from memflow.workflow.context import WorkflowContext

_in_activity_interceptor: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "memflow_in_activity_interceptor", default=False)


class ActivityProxy:
    """Attribute access gives a callable per activity; each call is one durable step."""

    def __init__(self, known: dict[str, Callable[..., Any]], task_queue: str | None,
                 policy: RetryPolicy, timeout: float | None, heartbeat: float | None,
                 priority: int = 0, concurrency_key: str | None = None):
        self._known = known
        self._priority = priority
        self._concurrency_key = concurrency_key
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
        if not interceptors or _in_activity_interceptor.get():
            return self._schedule(thread, name, queue, args_json)
        activity_ctx = {
            "activity_name": name, "args": list(args), "task_queue": queue,
            "workflow_id": thread.ref.workflow_id, "workflow_name": thread.name,
            "namespace": thread.namespace,
            "options": {"retry_policy": self._policy.to_dict(),
                        "start_to_close_timeout": self._timeout,
                        "heartbeat_timeout": self._heartbeat},
        }
        workflow_ctx = WorkflowContext(thread)

        async def chain(i: int) -> Any:
            if i == len(interceptors):
                return await self._schedule(thread, name, queue, args_json)
            out = interceptors[i].execute(activity_ctx, workflow_ctx, lambda: chain(i + 1))
            return await out if inspect.isawaitable(out) else out

        async def intercepted() -> Any:
            # Activities the interceptors call themselves are not intercepted again (that would
            # never end); the flag lives in this chain's own context only.
            _in_activity_interceptor.set(True)
            return await chain(0)
        return _start_eagerly(thread.loop, intercepted(), f"activity {name}")

    def _schedule(self, thread: Any, name: str, queue: str, args_json: str) -> Any:
        fn = self._known.get(name) or registry.find_activity(queue, name)
        decode = None
        if fn is not None:
            _, ret = payload.param_hints(fn)
            if ret is not None:
                def decode(v: Any, ret: Any = ret) -> Any:
                    return payload.decode_as(v, ret)
        body = {
            "name": name, "policy": self._policy.to_dict(), "timeout": self._timeout,
            "heartbeat": self._heartbeat, "workflow_id": thread.ref.workflow_id,
            "ref": registry.activity_ref(fn) if fn is not None else None,
            "at": round(time.time(), 6),  # when it was scheduled (schedule-to-start metric)
        }
        if thread.trace is not None:
            body["trace"] = tracing.thread_carrier(thread)
        task_payload = payload.dumps(body)
        task_payload = task_payload[:-1] + ',"args":' + args_json + "}"
        return thread.call(ActivityCall(thread.counter, name, f"{queue}-activity", task_payload,
                                        None, self._priority, self._concurrency_key), decode)


def _start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                   name: str) -> asyncio.Future[Any]:
    """Run ``coro`` up to its first suspension now, then as a task of ``loop`` (like Python
    3.12's eager tasks), in a context of its own.

    So an intercepted activity call takes its counter slots *at the call*, like every durable
    call: the interceptors' durable calls made before ``next()`` and, if none, the activity's own
    step are numbered exactly where the call is made. An interceptor without durable calls of its
    own therefore changes no step number at all, and the rest of the chain runs as the results
    arrive, in the recorded deliveries, so replays number everything as the live run did.
    """
    ctx = contextvars.copy_context()
    try:
        yielded = ctx.run(coro.send, None)
    except StopIteration as stop:
        done = loop.create_future()
        done.set_result(stop.value)
        return done
    except Exception as exc:
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    return loop.create_task(_resume(coro, yielded), name=name, context=ctx)


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _Resumed(coro, yielded)


class _Resumed:
    """Awaiting this drives a coroutine that already ran its first step (a late ``yield from``)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any):
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and errors go on into the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def proxy_activities(activities: Any = None, *, task_queue: str | None = None,
                     retry_policy: Any = None, start_to_close_timeout: Any = None,
                     heartbeat_timeout: Any = None, priority: int = 0,
                     concurrency_key: str | None = None) -> Any:
    """A proxy whose methods run activities durably through the ``<task_queue>-activity`` topic.

    ``activities`` (a dict, list, class, object or module) registers the functions in this
    process and gives the proxy their return types. May be called at module level or inside a
    workflow; calling an activity only works inside a workflow. ``priority`` (higher first)
    and ``concurrency_key`` place its calls in the activity queue's flow control
    (docs/flow-control.md).
    """
    if task_queue is not None:
        check_queue(task_queue)
    check_priority(priority)
    check_concurrency_key(concurrency_key)
    known = registry.register_activities(activities, task_queue) if activities is not None else {}
    policy = RetryPolicy.of(retry_policy)
    timeout = (parse_duration(start_to_close_timeout, "start_to_close_timeout")
               if start_to_close_timeout is not None else None)
    heartbeat = (parse_duration(heartbeat_timeout, "heartbeat_timeout")
                 if heartbeat_timeout is not None else None)
    return ActivityProxy(known, task_queue, policy, timeout, heartbeat, priority,
                         concurrency_key)
