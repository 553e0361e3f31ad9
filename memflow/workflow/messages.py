"""Message passing inside a workflow: query and update handlers, and ``wait_condition``.

Workflows are functions, so handlers are registered at run time, before the workflow's first
blocking await (a message that arrives before its handler exists waits for it, if it is an
update, or fails as unknown, if it is a query).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memflow.commands import Sleep
from memflow.durations import parse_duration
from memflow.engine.thread import current_thread
from memflow.errors import MemFlowTimeoutError
from memflow.ids import check_id


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what}: the name must be a non-empty string, not {name!r}")
    return check_id(name, f"{what} name")


def on_query(name: str, handler: Callable[..., Any]) -> None:
    """Answer the query ``name`` with ``handler(*args)``: a plain ``def`` that reads the
    workflow's state and returns a JSON value (it may not call durable APIs). Registering a
    name again replaces its handler."""
    name = _check_name(name, "workflow.on_query")
    if not callable(handler):
        raise TypeError(f"workflow.on_query({name!r}): handler must be callable")
    current_thread("workflow.on_query()").query_handlers[name] = handler


def on_update(name: str, handler: Callable[..., Any],
              validator: Callable[..., Any] | None = None) -> None:
    """Handle the update ``name`` with ``handler(*args)`` (``async def`` or ``def``; it may
    call durable APIs: activities, timers, children). ``validator(*args)``, a plain ``def``
    that only reads state, runs first: if it raises, the caller gets ``UpdateRejectedError``
    and nothing is recorded."""
    name = _check_name(name, "workflow.on_update")
    if not callable(handler):
        raise TypeError(f"workflow.on_update({name!r}): handler must be callable")
    if validator is not None and not callable(validator):
        raise TypeError(f"workflow.on_update({name!r}): validator must be callable or None")
    thread = current_thread("workflow.on_update()")
    if thread.ref.dim != "":
        raise RuntimeError("workflow.on_update() is only for a workflow's main function, "
                           "not a hook")
    thread.update_handlers[name] = (handler, validator)
    if name in thread.unhandled:
        thread.inbox = True  # a request waited for this handler: admit it after this delivery


async def wait_condition(predicate: Callable[[], Any], timeout: Any = None) -> None:
    """Wait until ``predicate()`` is true; it is re-evaluated after every delivery to the
    thread (results, signals, admitted updates). ``predicate`` only reads state. With
    ``timeout`` (seconds, a duration string or a ``timedelta``), a durable timer raises
    ``MemFlowTimeoutError`` when it runs out first."""
    if not callable(predicate):
        raise TypeError("workflow.wait_condition: predicate must be callable")
    seconds = None if timeout is None else parse_duration(timeout, "wait_condition timeout")
    thread = current_thread("workflow.wait_condition()")
    if thread.read(predicate, (), "a wait_condition predicate"):
        return
    cond = thread.loop.create_future()
    thread.conditions.append((predicate, cond))
    if seconds is not None:
        timer = thread.call(Sleep(thread.counter, seconds))

        def expire(_t: Any) -> None:
            if not cond.done():
                cond.set_exception(MemFlowTimeoutError(
                    f"wait_condition timed out after {seconds:g}s"))
        timer.add_done_callback(expire)
    await cond
