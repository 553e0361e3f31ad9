"""``WorkflowHandle``: read, await, signal and interrupt one workflow from outside."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memflow import payload, updates
from memflow.errors import (
    MemFlowInterruptedError,
    WorkflowNotFoundError,
    error_from_dict,
)
from memflow.waits import until_notified

if TYPE_CHECKING:
    from memflow.client import Client
    from memflow.store import NamespaceStore
    from memflow.updates import WorkflowUpdateHandle

HISTORY_FORMAT = "memflow-history/1"
SAFETY_WAIT = 30.0  # re-read the outcome at least this often (a lost NOTIFY)

STATUS_CODES = {"running": 1, "completed": 0, "failed": 0, "pending": -1,
                "interrupted": -100_000_001, "cancelled": 0, "timed_out": 0, "continued": 0}

# The statuses of a run that has ended (``result()`` returns or raises).
FINISHED = ("completed", "failed", "interrupted", "cancelled", "timed_out")


@dataclass
class WorkflowDescription:
    """What ``describe()`` tells about a run."""

    workflow_id: str
    run_id: str
    workflow_name: str
    task_queue: str
    status: str
    created_at: datetime | None
    completed_at: datetime | None
    attempt: int
    parent_workflow_id: str | None
    children: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    entity_type: str | None = None
    first_run_id: str | None = None
    """The first run of this run's continue-as-new chain (its own id when it starts one)."""
    continued_from: str | None = None
    """The run this one continued as new from (None for a first run)."""
    continued_to: str | None = None
    """For a run with status ``"continued"``: the run it continued in."""
    parked: list[dict[str, Any]] = field(default_factory=list)
    """Tasks of the run parked after repeated engine failures (poison work), each with its
    ``kind``, ``queue``, ``dim``, ``idx``, ``failures``, ``error`` and ``parked_at``; while
    the run is live, ``error`` is the first one's error, else that of a pass that failed and
    waits for its retry (a ``NonDeterminismError`` after a bad deploy: see docs/deploys.md)."""


class WorkflowHandle:
    """A reference to one run of a workflow id in a namespace (no I/O to create).

    With a ``run_id`` (a handle from ``start``, or ``get_handle(..., run_id=...)``) the handle
    is bound to that run: it keeps reading that run's own result, state and history after the
    id has been reused by a new run. Without one it follows the latest run of the id, and
    ``run_id`` shows the run it read last.
    """

    def __init__(self, client: Client, namespace: str, workflow_id: str,
                 task_queue: str | None = None, workflow_name: str | None = None,
                 run_id: str | None = None):
        self.client = client
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.task_queue = task_queue
        self.workflow_name = workflow_name
        self.run_id = run_id
        self.bound = run_id is not None

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r}, namespace={self.namespace!r})"

    async def _ns(self) -> NamespaceStore:
        return await self.client._namespace(self.namespace)

    async def _row(self) -> dict[str, Any]:
        row = await (await self._ns()).workflows.get(self.workflow_id, self._bound_run())
        if row is None:
            raise WorkflowNotFoundError(self.workflow_id)
        self.run_id = row["run_id"]
        return row

    def _bound_run(self) -> str | None:
        return self.run_id if self.bound else None

    async def result(self, state: bool = False, throw_on_error: bool = True,
                     timeout: float | None = None) -> Any:
        """The run's return value, once it has one; a failure raises its error class.

        ``state=True`` (the seed's flag: read the stored state before subscribing) returns the
        same value. ``timeout`` (seconds) raises ``TimeoutError`` without affecting the run.
        A run that continued as new is followed to the last run of its chain, whose outcome is
        returned (the handle stays bound to its own run).
        """
        ns = await self._ns()
        done = asyncio.Event()
        unsubscribe = ns.store.notifier.subscribe(ns.namespace, f"d:{self.workflow_id}",
                                                  lambda _k: done.set())
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            await ns.store.notifier.wait_listening(ns.namespace)
            run = self._bound_run()
            while True:
                done.clear()
                row = await ns.workflows.outcome(self.workflow_id, run)
                if row is None:
                    raise WorkflowNotFoundError(self.workflow_id)
                if not self.bound:
                    self.run_id = row["run_id"]
                if row["status"] == "continued" and row.get("continued_to"):
                    run = row["continued_to"]  # follow the chain to its last run
                    continue
                if row["status"] in FINISHED:
                    return self._outcome(row, throw_on_error)
                await until_notified(done, deadline, SAFETY_WAIT, lambda: (
                    f"workflow {self.workflow_id} did not finish within {timeout}s"))
        finally:
            unsubscribe()

    def _outcome(self, row: dict[str, Any], throw_on_error: bool) -> Any:
        status = row["status"]
        if status == "completed":
            return row["result"]
        err = row["error"] or {}
        if status == "interrupted" and err.get("throw") is False:
            return None
        if not throw_on_error:
            return {"$error": {k: err.get(k) for k in ("message", "code", "stack")}}
        if status == "interrupted":
            raise MemFlowInterruptedError(str(err.get("message", "interrupted")),
                                          stack=err.get("stack"))
        raise error_from_dict(err)

    async def state(self, metadata: bool = False) -> dict[str, Any]:
        """``{"done", "response", "$error"}`` (and the run's metadata with ``metadata=True``)."""
        row = await self._row()
        out = _state(row)
        if metadata:
            out["metadata"] = {k: row[k] for k in ("workflow_id", "run_id", "name",
                                                   "task_queue", "status", "created_at",
                                                   "updated_at", "completed_at", "attempt")}
        return out

    async def status(self) -> int:
        """>0 running, 0 finished (completed, failed, cancelled, timed out), -1 pending,
        below -100,000,000 interrupted."""
        return STATUS_CODES[(await self._row())["status"]]

    async def describe(self) -> WorkflowDescription:
        """The run's status, times, parent, children, error and parked tasks."""
        row = await self._row()
        ns = await self._ns()
        config = row["config"] or {}
        children = await ns.workflows.children(row["run_id"])
        parked = await ns.poison.parked_tasks(row["run_id"])
        error = row["error"]
        if error is None and row["status"] in ("running", "pending"):
            if parked:
                error = parked[0]["error"]
            else:  # a pass failing and retried, e.g. a replay diverging from the history
                failing = await ns.poison.failing_passes(row["run_id"])
                if failing:
                    error = failing[0]["error"]
        return WorkflowDescription(
            workflow_id=row["workflow_id"], run_id=row["run_id"], workflow_name=row["name"],
            task_queue=row["task_queue"], status=row["status"], created_at=row["created_at"],
            completed_at=row["completed_at"], attempt=row["attempt"],
            parent_workflow_id=row["parent_id"], children=children, error=error,
            entity_type=row["entity_type"], parked=parked,
            first_run_id=config.get("$first_run_id", row["run_id"]),
            continued_from=config.get("$continued_from"),
            continued_to=config.get("$continued_to"))

    async def signal(self, signal_id: str, data: Any = None) -> None:
        """Send a signal (the same as ``client.workflow.signal``)."""
        await self.client.workflow.signal(signal_id, data, namespace=self.namespace)

    async def interrupt(self, reason: str | None = None, throw: bool = True,
                        descend: bool = False, expire: float | None = None) -> None:
        """Stop the workflow now (and its children with ``descend``); its result becomes a
        ``MemFlowInterruptedError`` (code 410), or ``None`` with ``throw=False``."""
        await self._row()
        doc = {"message": reason or f"workflow {self.workflow_id} was interrupted", "code": 410,
               "type": "MemFlowInterruptedError", "stack": "", "throw": bool(throw)}
        await (await self._ns()).workflows.interrupt(self.workflow_id, payload.dumps(doc), descend,
                                           expire, self._bound_run())

    async def query(self, name: str, *args: Any, timeout: float | None = 10) -> Any:
        """Ask the run the query ``name``: a worker of its queue answers from the workflow's
        current state (its cached copy, else a replay), recording nothing; running and
        finished runs alike. ``QueryFailedError`` for an unknown name or a failing handler,
        ``TimeoutError`` when no worker answers within ``timeout`` seconds."""
        return await updates.query(self, name, args, timeout)

    async def update(self, name: str, *args: Any, update_id: str | None = None,
                     timeout: float | None = None) -> Any:
        """Send the update ``name`` and wait for its handler's result (durable, exactly
        once; ``UpdateRejectedError`` if its validator refuses it, ``UpdateFailedError`` if
        the handler raises). The same ``update_id`` twice runs the handler once."""
        uh = await self.start_update(name, *args, update_id=update_id)
        return await uh.result(timeout=timeout)

    async def start_update(self, name: str, *args: Any,
                           update_id: str | None = None) -> WorkflowUpdateHandle:
        """Send the update ``name``; returns once it is accepted (its validator passed and it
        is in the run's history, waiting for a worker if none runs) an update handle, whose
        ``result()`` waits for the handler's outcome."""
        return await updates.start_update(self, name, args, update_id)

    async def cancel(self, reason: str | None = None) -> None:
        """Ask the run to cancel (cooperatively): ``asyncio.CancelledError`` is raised in the
        workflow at the call each of its threads awaits; the activities it awaits are
        abandoned (their ``heartbeat()`` raises ``CancelledError``) and its ``exec_child``
        children are cancelled too. The workflow may catch it and go on with durable calls;
        if it escapes, the run ends ``"cancelled"`` and ``result()`` raises
        ``MemFlowCancelledError`` (499). Cancelling twice is cancelling once; cancelling a
        finished run does nothing."""
        await self._row()
        if reason is not None and not isinstance(reason, str):
            raise TypeError("cancel: reason must be a string or None")
        message = reason or f"workflow {self.workflow_id} was cancelled"
        await (await self._ns()).control.cancel(
            self.workflow_id, self._bound_run(), payload.dumps({"message": message}),
            payload.dumps({"message": message, "code": 499, "type": "CancelledError",
                           "stack": ""}),
            payload.dumps({"message": message, "code": 499, "type": "MemFlowCancelledError",
                           "stack": ""}))

    async def terminate(self, reason: str | None = None) -> None:
        """End the run at once, running no more workflow code: status ``"interrupted"``,
        ``result()`` raises ``MemFlowInterruptedError`` (410) — ``interrupt(throw=True)``."""
        if reason is not None and not isinstance(reason, str):
            raise TypeError("terminate: reason must be a string or None")
        await self.interrupt(reason or f"workflow {self.workflow_id} was terminated",
                             throw=True)

    async def export(self, allow: list[str] | None = None, block: list[str] | None = None,
                     values: bool = True) -> dict[str, Any]:
        """The run as a document: ``data`` (its search fields, by name), ``state``, ``status``,
        ``timeline``, ``transitions``, and ``run`` (ids, name, queue, arguments, entity)."""
        row = await self._row()
        steps = await (await self._ns()).workflows.steps(row["run_id"])
        timeline = []
        for s in steps:
            entry: dict[str, Any] = {
                "index": s["idx"], "dimension": s["dim"], "kind": s["kind"], "name": s["name"],
                "status": s["status"], "created_at": s["created_at"],
                "completed_at": s["completed_at"],
                "duration_ms": None if s["completed_at"] is None else round(
                    (s["completed_at"] - s["created_at"]).total_seconds() * 1000, 3),
            }
            if values:
                entry["result"] = s["result"]
                entry["error"] = s["error"]
            timeline.append(entry)
        out = {
            "data": dict(row["search"] or {}) if values else {},
            "run": {"workflow_id": row["workflow_id"], "run_id": row["run_id"],
                    "workflow_name": row["name"], "task_queue": row["task_queue"],
                    "args": row["args"] if values else None,
                    "parent_workflow_id": row["parent_id"],
                    "entity": row["entity"] if values else None},
            "state": _state(row),
            "status": row["status"],
            "timeline": timeline,
            "transitions": [{"status": "created", "at": row["created_at"]}] + (
                [{"status": row["status"], "at": row["completed_at"]}]
                if row["completed_at"] else []),
        }
        keys = set(out)
        if allow:
            keys &= set(allow)
        if block:
            keys -= set(block)
        return {k: v for k, v in out.items() if k in keys}

    async def fetch_history(self) -> dict[str, Any]:
        """The run's recorded history as a JSON-serialisable document, format
        ``"memflow-history/1"``: the workflow's name, queue, arguments and outcome, its hook
        threads, and every step with its thread (``dimension``), ``index``, ``kind``,
        ``name``, ``status``, the delivery ``seq`` that consumed it, result or error, and
        timestamps (ISO 8601). ``memflow.testing.Replayer`` replays it without a database."""
        row = await self._row()
        steps, threads = await (await self._ns()).history.of_run(row["run_id"])
        return {
            "format": HISTORY_FORMAT, "namespace": self.namespace,
            "workflow_id": row["workflow_id"], "run_id": row["run_id"],
            "workflow_name": row["name"], "task_queue": row["task_queue"],
            "args": row["args"], "config": row["config"], "attempt": row["attempt"],
            "status": row["status"], "result": row["result"], "error": row["error"],
            "created_at": _iso(row["created_at"]), "completed_at": _iso(row["completed_at"]),
            "threads": [{"dimension": t["dim"], "workflow_name": t["name"],
                         "task_queue": t["task_queue"], "args": t["args"],
                         "status": t["status"], "created_at": _iso(t["created_at"]),
                         "completed_at": _iso(t["completed_at"])} for t in threads],
            "steps": [{"dimension": s["dim"], "index": s["idx"], "kind": s["kind"],
                       "name": s["name"], "status": s["status"], "seq": s["seq"],
                       "result": s["result"], "error": s["error"], "attempts": s["attempts"],
                       "created_at": _iso(s["created_at"]),
                       "completed_at": _iso(s["completed_at"])} for s in steps],
        }

    async def entity(self) -> Any:
        """The workflow's entity document, as it is now (read-only)."""
        return (await self._row())["entity"]

    async def query_state(self, fields: list[str]) -> dict[str, Any]:
        """The named search fields (``None`` for a missing one)."""
        search = (await self._row())["search"] or {}
        return {f: search.get(f) for f in fields}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _state(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"done": row["status"] in (*FINISHED, "continued"),
                           "response": row["result"]}
    quiet = row["status"] == "interrupted" and (row["error"] or {}).get("throw") is False
    if row["error"] is not None and not quiet:
        out["$error"] = {k: row["error"].get(k) for k in ("message", "code", "stack")}
    return out
