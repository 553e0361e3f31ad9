"""``client.schedule`` and the schedule handle: create, describe, pause, trigger, backfill."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from memflow import payload
from memflow.errors import (
    ScheduleAlreadyExistsError,
    ScheduleNotFoundError,
    WorkflowNotFoundError,
)
from memflow.schedules import policy
from memflow.schedules.options import (
    action_of,
    check_note,
    check_paused,
    check_schedule_id,
    overlap_or_none,
    spec_of,
    spec_values,
)
from memflow.schedules.spec import ScheduleSpec, check_overlap
from memflow.store import validate_namespace
from memflow.store.schedules import ScheduleRow, ScheduleUpdate

if TYPE_CHECKING:
    from memflow.client import Client
    from memflow.store import NamespaceStore

RECENT_RUNS = 10
ACTION_KEYS = ("workflow_name", "task_queue", "args", "config")
_UNSET: Any = object()


@dataclass
class ScheduleDescription:
    """What ``describe()`` tells about a schedule. ``next_runs`` are tz-aware datetimes in the
    schedule's time zone; ``recent_runs`` are dicts (``scheduled_at``, ``started_at``,
    ``workflow_id``, ``status``), oldest first; ``running`` the ids of its open runs."""

    schedule_id: str
    workflow_name: str
    task_queue: str
    args: list[Any]
    config: dict[str, Any]
    cron: list[str]
    every: float | None
    timezone: str
    overlap: str
    catchup_window: float
    jitter: float
    start_at: datetime | None
    end_at: datetime | None
    paused: bool
    note: str | None
    next_runs: list[datetime]
    recent_runs: list[dict[str, Any]]
    running: list[str]
    buffered: list[datetime]
    skipped: int
    missed: int
    created_at: datetime
    updated_at: datetime


class ScheduleClient:
    """``client.schedule``: create, address and list the schedules of a namespace."""

    def __init__(self, client: Client):
        self._client = client

    async def create(self, schedule_id: str, *, workflow_name: Any, task_queue: str,
                     args: list[Any] | None = None, cron: str | list[str] | None = None,
                     every: Any = None, timezone: str = "UTC", overlap: str = "skip",
                     catchup_window: Any = "1 minute", jitter: Any = None,
                     start_at: Any = None, end_at: Any = None, paused: bool = False,
                     note: str | None = None, namespace: str | None = None,
                     config: dict[str, Any] | None = None) -> ScheduleHandle:
        """Create a schedule that starts ``workflow_name`` on each tick; raises
        ``ScheduleAlreadyExistsError`` when the id is taken. Bad input raises before any
        write (``ValueError`` naming the field)."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        sid = check_schedule_id(schedule_id)
        spec = spec_of({"cron": cron, "every": every, "timezone": timezone,
                        "start_at": start_at, "end_at": end_at, "jitter": jitter,
                        "catchup_window": catchup_window})
        action = action_of(workflow_name, task_queue, args, config)
        row = {"schedule_id": sid, "spec": _dumps(spec.to_dict()), "action": _dumps(action),
               "overlap": check_overlap(overlap), "paused": check_paused(paused),
               "note": check_note(note)}
        ns = await self._client._namespace(ns_name)
        tick = spec.next_after(await ns.schedules.db_now())
        row["next_at"] = tick
        row["fire_at"] = None if tick is None else tick + _jitter(spec, sid, tick)
        if not await ns.schedules.create_schedule(row):
            raise ScheduleAlreadyExistsError(sid)
        return ScheduleHandle(self._client, ns_name, sid)

    def get_handle(self, schedule_id: str, namespace: str | None = None) -> ScheduleHandle:
        """A handle on a schedule (no I/O)."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        return ScheduleHandle(self._client, ns_name, check_schedule_id(schedule_id))

    async def list(self, namespace: str | None = None) -> list[ScheduleDescription]:
        """Every schedule of the namespace, described, by id."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        ns = await self._client._namespace(ns_name)
        return [await _describe(ns, row) for row in await ns.schedules.list_schedules()]


class ScheduleHandle:
    """A reference to one schedule (no I/O to create)."""

    def __init__(self, client: Client, namespace: str, schedule_id: str):
        self.client = client
        self.namespace = namespace
        self.schedule_id = schedule_id

    def __repr__(self) -> str:
        return f"ScheduleHandle({self.schedule_id!r}, namespace={self.namespace!r})"

    async def _ns(self) -> NamespaceStore:
        return await self.client._namespace(self.namespace)

    async def describe(self) -> ScheduleDescription:
        """The schedule's spec, next five run times, recent runs and counters."""
        ns = await self._ns()
        row = await ns.schedules.get_schedule(self.schedule_id)
        if row is None:
            raise ScheduleNotFoundError(self.schedule_id)
        return await _describe(ns, row)

    async def pause(self, note: str | None = None) -> None:
        """Stop starting runs (open runs go on); a ``note`` replaces the schedule's note."""
        await self._reschedule(_with_note({"paused": True}, note))

    async def unpause(self, note: str | None = None) -> None:
        """Start runs again from the next tick after now (ticks of the pause are not run)."""
        await self._reschedule(_with_note({"paused": False}, note))

    async def update(self, *, workflow_name: Any = _UNSET, task_queue: Any = _UNSET,
                     args: Any = _UNSET, cron: Any = _UNSET, every: Any = _UNSET,
                     timezone: Any = _UNSET, overlap: Any = _UNSET,
                     catchup_window: Any = _UNSET, jitter: Any = _UNSET,
                     start_at: Any = _UNSET, end_at: Any = _UNSET, paused: Any = _UNSET,
                     note: Any = _UNSET, config: Any = _UNSET) -> None:
        """Change some of ``create``'s keywords (the others stay); the next tick is
        recomputed from now. ``cron=None`` or ``every=None`` removes that part of the spec."""
        values = dict(locals())
        given = {k: v for k, v in values.items() if k != "self" and v is not _UNSET}
        ns = await self._ns()
        row = await ns.schedules.get_schedule(self.schedule_id)
        if row is None:
            raise ScheduleNotFoundError(self.schedule_id)
        changes: dict[str, Any] = {}
        timing = {k: v for k, v in given.items() if k in spec_values(ScheduleSpec())}
        if timing:
            merged = {**spec_values(ScheduleSpec.from_dict(row.spec)), **timing}
            changes["spec"] = spec_of(merged).to_dict()
        acting: dict[str, Any] = {k: given[k] for k in ACTION_KEYS if k in given}
        if acting:
            merged_action: dict[str, Any] = {**row.action, **acting}
            changes["action"] = action_of(merged_action["workflow_name"],
                                          merged_action["task_queue"], merged_action["args"],
                                          merged_action["config"])
        if "overlap" in given:
            changes["overlap"] = check_overlap(given["overlap"])
        if "paused" in given:
            changes["paused"] = check_paused(given["paused"])
        if "note" in given:
            changes["note"] = check_note(given["note"])
        await self._reschedule(changes)

    async def trigger(self, overlap: str | None = None) -> str | None:
        """Start one run now (the schedule's overlap policy applies, or ``overlap``);
        returns its workflow id, or None when the policy skipped or buffered it (or a live
        workflow holds that id)."""
        pol = overlap_or_none(overlap)
        started: list[str | None] = []

        def decide(row: ScheduleRow) -> ScheduleUpdate:
            update, wf_id = policy.on_trigger(row, pol)
            started.append(wf_id)
            return update
        really = await self._modify(decide)
        return started[-1] if started and started[-1] in really else None

    async def backfill(self, start: datetime, end: datetime,
                       overlap: str | None = None) -> list[str]:
        """One run per tick of the spec in ``[start, end)`` (catch-up window ignored; ticks
        that already ran are left alone); returns the workflow ids started now."""
        pol = overlap_or_none(overlap)
        begin, finish = _aware(start, "start"), _aware(end, "end")
        if finish < begin:
            raise ValueError("backfill: end must not be before start")
        return await self._modify(lambda row: policy.on_backfill(row, begin, finish, pol))

    async def delete(self) -> None:
        """Delete the schedule (runs it started go on)."""
        if not await (await self._ns()).schedules.delete_schedule(self.schedule_id):
            raise ScheduleNotFoundError(self.schedule_id)

    async def _reschedule(self, changes: dict[str, Any]) -> None:
        await self._modify(lambda row: policy.reschedule(row, changes, row.db_now))

    async def _modify(self, decide: Callable[[ScheduleRow], ScheduleUpdate]) -> list[str]:
        def notifying(row: ScheduleRow) -> ScheduleUpdate:
            update = decide(row)
            update.notify = True  # the schedulers re-read it (buffered ticks, next due time)
            return update
        ns = await self._ns()
        done = await ns.schedules.modify_schedule(self.schedule_id, notifying)
        if done is None:
            raise ScheduleNotFoundError(self.schedule_id)
        update, started = done
        await cancel_runs(self.client, self.namespace, update.cancel)
        return started


async def cancel_runs(client: Client, namespace: str, workflow_ids: list[str]) -> None:
    """Ask open runs to cancel (cooperatively: ``WorkflowHandle.cancel``); a run gone
    meanwhile is skipped."""
    for wf_id in workflow_ids:
        handle = client.workflow.get_handle(workflow_id=wf_id, namespace=namespace)
        with contextlib.suppress(WorkflowNotFoundError):
            await handle.cancel(reason="cancelled by its schedule (overlap policy cancel_other)")


async def _describe(ns: NamespaceStore, row: ScheduleRow) -> ScheduleDescription:
    spec = ScheduleSpec.from_dict(row.spec)
    runs = await ns.schedules.schedule_runs(row.schedule_id, RECENT_RUNS)
    return ScheduleDescription(
        schedule_id=row.schedule_id, workflow_name=row.action["workflow_name"],
        task_queue=row.action["task_queue"], args=row.action.get("args") or [],
        config=row.action.get("config") or {}, cron=list(spec.cron),
        every=None if spec.every is None else float(spec.every), timezone=spec.timezone,
        overlap=row.overlap, catchup_window=spec.catchup_window, jitter=spec.jitter,
        start_at=spec.start_at, end_at=spec.end_at, paused=row.paused, note=row.note,
        next_runs=_upcoming(spec, row),
        recent_runs=runs, running=list(row.running), buffered=list(row.buffer),
        skipped=int(row.skipped), missed=int(row.missed), created_at=row.created_at,
        updated_at=row.updated_at)


def _upcoming(spec: ScheduleSpec, row: ScheduleRow) -> list[datetime]:
    if row.next_at is None:
        return []
    try:
        return spec.upcoming(row.db_now)
    except Exception:  # a stored spec this version cannot read (its schedule is paused)
        return []


def _with_note(changes: dict[str, Any], note: Any) -> dict[str, Any]:
    if check_note(note) is not None:
        changes["note"] = note
    return changes


def _aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"backfill: {what} must be a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _jitter(spec: ScheduleSpec, schedule_id: str, tick: datetime) -> timedelta:
    return timedelta(seconds=spec.jitter_of(schedule_id, tick))


def _dumps(doc: dict[str, Any]) -> str:
    return payload.dumps(doc, "schedule")


