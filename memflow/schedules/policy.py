"""What a tick does to a schedule: catch-up, the overlap policies, buffering, triggers.

Pure functions of a locked ``ScheduleRow`` (and the database's ``now``): they return the
``ScheduleUpdate`` the store applies in the same transaction. Overlap policies (Temporal's):

- ``skip``: a tick that comes while a run is open is skipped (and counted);
- ``buffer_one``: it waits for the open run to close; one tick at most waits, later ones are
  skipped;
- ``buffer_all``: every such tick waits; they start one after another;
- ``cancel_other``: the open run is asked to cancel (``WorkflowHandle.cancel``, once the tick
  has committed), and the tick waits until it has closed;
- ``terminate_other``: the open run is terminated (interrupted), and the tick starts at once;
- ``allow_all``: every tick starts, whatever is running.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from memflow import payload
from memflow.ids import guid
from memflow.schedules.spec import ScheduleSpec, tick_workflow_id
from memflow.store.schedules import ScheduleRow, ScheduleUpdate, TickStart, tick_start_params

CATCHUP_CAP = 10_000  # ticks looked at per claim; a longer gap jumps to the catch-up window


class _Tick:
    """A ScheduleUpdate being built, with the schedule's open runs as they change."""

    def __init__(self, row: ScheduleRow):
        self.update = ScheduleUpdate(row=dataclasses.replace(row, buffer=list(row.buffer)))
        self.running = list(row.running)

    @property
    def row(self) -> ScheduleRow:
        return self.update.row

    def start(self, tick: datetime) -> str:
        wf_id = tick_workflow_id(self.row.schedule_id, tick)
        config = dict(self.row.action.get("config") or {})
        config["$scheduled_at"] = tick.astimezone(UTC).isoformat()
        config["$schedule_id"] = self.row.schedule_id
        params = tick_start_params(self.row.action, wf_id, guid(),
                                   payload.dumps(config, "config"))
        self.update.starts.append(TickStart(tick, wf_id, params))
        self.running.append(wf_id)
        return wf_id

    def offer(self, tick: datetime, overlap: str) -> str | None:
        """Apply ``overlap`` to one tick; returns the workflow id when it starts now."""
        buffer = self.row.buffer
        if overlap == "allow_all" or (not self.running and not buffer):
            return self.start(tick)
        if overlap == "skip":
            self.update.add_skipped += 1
        elif overlap == "buffer_one":
            if buffer:
                self.update.add_skipped += 1
            else:
                buffer.append(tick)
        elif overlap == "buffer_all":
            buffer.append(tick)
        elif overlap == "cancel_other":
            self.update.add_skipped += len(buffer)
            buffer[:] = [tick]
            self.update.cancel.extend(self.running)
        else:  # terminate_other
            self.update.add_skipped += len(buffer)
            buffer.clear()
            self.update.interrupts.extend(self.running)
            self.running = []
            return self.start(tick)
        return None

    def drain_buffer(self) -> None:
        """Start the first buffered tick when no run is open any more."""
        if self.row.buffer and not self.running:
            self.start(self.row.buffer.pop(0))


def on_due(row: ScheduleRow) -> ScheduleUpdate:
    """A claimed schedule: start buffered ticks whose turn came, then every due tick (those
    older than the catch-up window are counted as missed), and advance its next due time."""
    spec = ScheduleSpec.from_dict(row.spec)
    now = row.db_now
    t = _Tick(row)
    t.drain_buffer()
    window = timedelta(seconds=spec.catchup_window)
    tick = row.next_at
    seen = 0
    while (tick is not None and row.fire_at is not None and seen < CATCHUP_CAP
           and tick + timedelta(seconds=spec.jitter_of(row.schedule_id, tick)) <= now):
        if now - tick > window:
            t.update.add_missed += 1
        else:
            t.offer(tick, row.overlap)
        seen += 1
        tick = spec.next_after(tick)
    if seen == CATCHUP_CAP and tick is not None and now - tick > window:
        tick = spec.next_after(now - window)
    _set_next(t.row, spec, tick)
    return t.update


def on_trigger(row: ScheduleRow, overlap: str | None) -> tuple[ScheduleUpdate, str | None]:
    """One run now (to the second; a later second when that one already has a run)."""
    t = _Tick(row)
    tick = row.db_now.replace(microsecond=0)
    if row.last_run_at is not None and row.last_run_at >= tick:
        tick = row.last_run_at + timedelta(seconds=1)
    started = t.offer(tick, overlap or row.overlap)
    return t.update, started


def on_backfill(row: ScheduleRow, start: datetime, end: datetime,
                overlap: str | None) -> ScheduleUpdate:
    """One tick per time of the schedule's spec in ``[start, end)``, applied in order with
    ``overlap`` (default the schedule's); ticks that already have a run are left alone."""
    spec = dataclasses.replace(ScheduleSpec.from_dict(row.spec), start_at=None, end_at=None)
    ticks = spec.ticks(start - timedelta(microseconds=1), end - timedelta(microseconds=1),
                       CATCHUP_CAP + 1)
    if len(ticks) > CATCHUP_CAP:
        raise ValueError(f"backfill: the range holds more than {CATCHUP_CAP} ticks")
    t = _Tick(row)
    t.drain_buffer()
    for tick in ticks:
        t.offer(tick, overlap or row.overlap)
    return t.update


def reschedule(row: ScheduleRow, changes: dict[str, Any], now: datetime) -> ScheduleUpdate:
    """``row`` with ``changes`` to its columns; its next due time recomputed from ``now``."""
    new = dataclasses.replace(row, **changes)
    spec = ScheduleSpec.from_dict(new.spec)
    _set_next(new, spec, spec.next_after(now))
    return ScheduleUpdate(row=new, notify=True)


def _set_next(row: ScheduleRow, spec: ScheduleSpec, tick: datetime | None) -> None:
    row.next_at = tick
    row.fire_at = None if tick is None else tick + timedelta(
        seconds=spec.jitter_of(row.schedule_id, tick))
