"""What a process has registered: activity functions (per queue) and interceptors."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

_activities: dict[str | None, dict[str, Callable[..., Any]]] = {}
_by_ref: dict[str, Callable[..., Any]] = {}
_interceptors: list[Any] = []
_activity_interceptors: list[Any] = []


def normalize_activities(activities: Any) -> dict[str, Callable[..., Any]]:
    """Activities as name → callable, from a dict, a list, a module, a class or an object."""
    if activities is None:
        return {}
    if isinstance(activities, dict):
        out = {}
        for name, fn in activities.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError("an activity dict maps names (str) to callables")
            out[name] = fn
        return out
    if isinstance(activities, list | tuple):
        out = {}
        for fn in activities:
            if not callable(fn) or not hasattr(fn, "__name__"):
                raise TypeError(f"activity {fn!r} is not a named callable")
            out[fn.__name__] = fn
        return out
    if isinstance(activities, types.ModuleType):
        return {n: f for n, f in vars(activities).items()
                if not n.startswith("_") and inspect.isfunction(f)
                and f.__module__ == activities.__name__}
    if isinstance(activities, type):
        try:
            target: Any = activities()
        except TypeError:
            target = activities
    else:
        target = activities
    out = {}
    for n in dir(target):
        if n.startswith("_"):
            continue
        fn = getattr(target, n)
        if callable(fn) and not isinstance(fn, type):
            out[n] = fn
    if not out:
        raise TypeError(f"{activities!r} has no public methods to use as activities")
    return out


def register_activities(activities: Any, queue: str | None = None) -> dict[str, Callable[..., Any]]:
    """Register activities for ``queue`` (or process-wide with ``None``); returns them by name."""
    found = normalize_activities(activities)
    _activities.setdefault(queue, {}).update(found)
    for fn in found.values():
        ref = activity_ref(fn)
        if ref:
            _by_ref[ref] = fn
    return found


def activity_ref(fn: Callable[..., Any]) -> str | None:
    """``module:qualname`` of a function, which names it unambiguously across modules."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname:
        return None
    return f"{module}:{qualname}"


def find_activity(queue: str | None, name: str, ref: str | None = None
                  ) -> Callable[..., Any] | None:
    """The activity ``name`` for ``queue``: registered for that queue, else the function
    ``ref`` (``module:qualname``) names, else registered process-wide under that name."""
    fn = _activities.get(queue, {}).get(name)
    if fn is None and ref:
        fn = _by_ref.get(ref)
    if fn is None:
        fn = _activities.get(None, {}).get(name)
    return fn


def interceptors() -> list[Any]:
    """Workflow interceptors, outermost (first registered) first."""
    return list(_interceptors)


def activity_interceptors() -> list[Any]:
    """Activity interceptors, outermost (first registered) first."""
    return list(_activity_interceptors)


def _interceptor(interceptor: Any, what: str, signature: str) -> Any:
    """The interceptor as an object with ``execute``; a dict ``{"execute": fn}`` is accepted."""
    if isinstance(interceptor, dict):
        execute = interceptor.get("execute")
        if callable(execute):
            return types.SimpleNamespace(execute=execute)
    elif callable(getattr(interceptor, "execute", None)):
        return interceptor
    raise TypeError(f"{what} needs an `execute({signature})` method, got {interceptor!r}")


def register_interceptor(interceptor: Any) -> None:
    """Add a workflow interceptor: an object with ``async execute(ctx, next)``.

    Interceptors wrap every pass of every workflow this process runs, the first registered
    outermost. ``ctx`` is the workflow's context (a mapping: ``ctx["workflow_id"]``,
    ``ctx.get("workflow_name")``, ``task_queue``, ``namespace``, ``can_retry``, ``replay``...);
    ``await next()`` runs the rest of the chain and the workflow, and returns its result. The
    interceptor runs inside the workflow, so it may make durable calls (activities, sleeps,
    signals...): they are numbered and replayed like the workflow's own.
    """
    _interceptors.append(_interceptor(interceptor, "a workflow interceptor", "ctx, next"))


def register_activity_interceptor(interceptor: Any) -> None:
    """Add an activity interceptor: ``async execute(activity_ctx, workflow_ctx, next)``.

    It wraps every activity call a workflow makes through ``proxy_activities``, on every pass
    (replayed calls included), the first registered outermost. ``activity_ctx`` is a mapping
    (``activity_name``, ``args``, ``task_queue``, ``workflow_id``, ...); ``await next()``
    schedules the activity (or takes its recorded result) and returns the result. Durable calls
    the interceptor makes itself are numbered like the workflow's own, and activities it calls
    are not intercepted again.
    """
    _activity_interceptors.append(_interceptor(
        interceptor, "an activity interceptor", "activity_ctx, workflow_ctx, next"))


def clear_interceptors() -> None:
    """Remove every workflow and activity interceptor of this process."""
    _interceptors.clear()
    _activity_interceptors.clear()
