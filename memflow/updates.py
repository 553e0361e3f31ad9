"""Message passing from outside a workflow: queries and updates sent through a handle.

A query is a request row answered by a worker of the run's queue (NOTIFY both ways, no
polling); an update is a durable request that the run's main thread admits into its history,
in order, and whose handler's outcome is told to the caller (``WorkflowUpdateHandle``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from memflow import payload
from memflow.errors import (
    QueryFailedError,
    UpdateFailedError,
    UpdateRejectedError,
    WorkflowNotFoundError,
    error_from_dict,
)
from memflow.ids import check_id, guid
from memflow.store.queries import RECLAIM_SECONDS
from memflow.waits import until_notified

if TYPE_CHECKING:
    from memflow.handle import WorkflowHandle
    from memflow.store import NamespaceStore

SAFETY_WAIT = 30.0  # re-read an update's state at least this often (a lost NOTIFY)


def _name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what}: name must be a non-empty string, not {name!r}")
    return check_id(name, f"{what} name")


def _timeout(timeout: Any, what: str) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"{what}: timeout must be a positive number of seconds or None")
    return float(timeout)


async def query(handle: WorkflowHandle, name: str, args: tuple[Any, ...],
                timeout: Any = 10) -> Any:
    """Ask the handle's run the query ``name`` (see ``WorkflowHandle.query``)."""
    name = _name(name, "query")
    seconds = _timeout(timeout, "query")
    args_json = payload.dumps(list(args), f"arguments of query {name!r}")
    ns: NamespaceStore = await handle._ns()
    query_id = guid()
    answered = asyncio.Event()
    unsubscribe = ns.store.notifier.subscribe(ns.namespace, f"a:{query_id}",
                                              lambda _k: answered.set())
    loop = asyncio.get_running_loop()
    try:
        await ns.store.notifier.wait_listening(ns.namespace)
        run_id = await ns.queries.request(query_id, handle.workflow_id, handle._bound_run(),
                                          name, args_json)
        if run_id is None:
            raise WorkflowNotFoundError(handle.workflow_id)
        handle.run_id = run_id
        deadline = None if seconds is None else loop.time() + seconds
        row = None
        while row is None:
            wait = RECLAIM_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    break
            try:
                await asyncio.wait_for(answered.wait(), wait)
            except TimeoutError:
                await ns.queries.remind(query_id)  # the worker that claimed it may be gone
                continue
            answered.clear()
            row = await ns.queries.take(query_id, answered_only=True)
        if row is None:
            row = await ns.queries.take(query_id)  # withdraw it (unless answered just now)
        if row is None or row["status"] != "answered":
            raise TimeoutError(f"no worker answered query {name!r} of workflow "
                               f"{handle.workflow_id} within {seconds:g}s")
    finally:
        unsubscribe()
    if row["error"] is not None:
        err = row["error"]
        raise QueryFailedError(str(err.get("message", "")), stack=err.get("stack"))
    return row["result"]


class WorkflowUpdateHandle:
    """An accepted update: ``update_id``, and ``await result()`` for its handler's outcome."""

    def __init__(self, handle: WorkflowHandle, name: str, update_id: str, run_id: str):
        self.handle = handle
        self.name = name
        self.update_id = update_id
        self.run_id = run_id

    def __repr__(self) -> str:
        return (f"WorkflowUpdateHandle({self.name!r}, update_id={self.update_id!r}, "
                f"workflow_id={self.handle.workflow_id!r})")

    async def result(self, timeout: float | None = None) -> Any:
        """The handler's return value; its error raises ``UpdateFailedError`` (so does the
        run ending before the handler did). ``timeout`` (seconds) raises ``TimeoutError``
        without affecting the update."""
        seconds = _timeout(timeout, "update result")
        ns = await self.handle._ns()
        return await _await(ns, self.handle.workflow_id, self.run_id, self.update_id,
                            self.name, accepted_only=False, timeout=seconds, send=None)


async def start_update(handle: WorkflowHandle, name: str, args: tuple[Any, ...],
                       update_id: str | None = None) -> WorkflowUpdateHandle:
    """Send update ``name`` and return once it is accepted (see
    ``WorkflowHandle.start_update``)."""
    name = _name(name, "update")
    update_id = guid() if update_id is None else check_id(update_id, "update_id")
    args_json = payload.dumps(list(args), f"arguments of update {name!r}")
    ns: NamespaceStore = await handle._ns()
    box: dict[str, str] = {}

    async def send() -> tuple[str, bool]:
        row = await ns.updates.request(handle.workflow_id, handle._bound_run(), update_id,
                                       name, args_json)
        if row["run_id"] is None:
            raise WorkflowNotFoundError(handle.workflow_id)
        handle.run_id = box["run_id"] = row["run_id"]
        return str(row["run_id"]), bool(row["requested"])
    await _await(ns, handle.workflow_id, None, update_id, name, accepted_only=True,
                 timeout=None, send=send)
    return WorkflowUpdateHandle(handle, name, update_id, box["run_id"])


async def _await(ns: NamespaceStore, workflow_id: str, run_id: str | None, update_id: str,
                 name: str, *, accepted_only: bool, timeout: float | None,
                 send: Callable[[], Awaitable[tuple[str, bool]]] | None) -> Any:
    changed = asyncio.Event()
    notifier = ns.store.notifier
    unsubscribe = [notifier.subscribe(ns.namespace, f"u:{update_id}", lambda _k: changed.set()),
                   notifier.subscribe(ns.namespace, f"d:{workflow_id}", lambda _k: changed.set())]
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    late = functools.partial(_late, name, workflow_id, timeout)
    try:
        await notifier.wait_listening(ns.namespace)
        fresh = False  # a new request: nothing to read before a worker tells us
        if send is not None:
            run_id, fresh = await send()
        assert run_id is not None
        while True:
            if fresh:
                fresh = False
                await until_notified(changed, deadline, SAFETY_WAIT, late)
                continue
            changed.clear()
            st = await ns.updates.state(run_id, update_id)
            status = st["status"]
            if status == "rejected":
                err = st["error"] or {}
                raise UpdateRejectedError(str(err.get("message", "")), stack=err.get("stack"))
            if status == "completed" or (accepted_only and status in ("accepted", "failed")):
                return st["result"]
            if status == "failed":
                err = st["error"] or {}
                cause = error_from_dict(err)
                failed = UpdateFailedError(f"update {name!r} failed: {cause.message}",
                                           stack=err.get("stack"))
                failed.cause = err
                raise failed
            if (st["run_status"] == "continued" and status in (None, "requested")
                    and st["continued_to"]):
                if status == "requested":  # it raced the hand-over: move it on
                    await ns.updates.follow(run_id, update_id)
                run_id = st["continued_to"]  # not admitted yet: it moved to the next run
                continue
            if st["run_status"] != "running":
                raise UpdateFailedError(f"update {name!r}: workflow {workflow_id} is not "
                                        f"running (status {st['run_status']})")
            await until_notified(changed, deadline, SAFETY_WAIT, late)
    finally:
        for unsub in unsubscribe:
            unsub()


def _late(name: str, workflow_id: str, timeout: float | None) -> str:
    return f"update {name!r} of workflow {workflow_id} did not finish within {timeout:g}s"
