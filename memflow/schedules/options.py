"""The keywords of ``client.schedule.create`` and ``handle.update``, checked before any I/O."""

from __future__ import annotations

from typing import Any

from memflow import payload
from memflow.ids import check_id, function_name
from memflow.retry import RetryPolicy
from memflow.schedules.spec import ScheduleSpec, check_overlap, parse_spec

MAX_SCHEDULE_ID = 900  # its runs' ids add the tick's time (21 characters) to it

TIMING = ("cron", "every", "timezone", "start_at", "end_at", "jitter", "catchup_window")


def check_schedule_id(value: Any) -> str:
    """``value`` if it is a usable schedule id."""
    schedule_id = check_id(value, "schedule_id")
    if len(schedule_id) > MAX_SCHEDULE_ID:
        raise ValueError(f"schedule_id is longer than {MAX_SCHEDULE_ID} characters")
    return schedule_id


def action_of(workflow_name: Any, task_queue: Any, args: Any, config: Any) -> dict[str, Any]:
    """What each tick starts: the workflow's name, queue, args and config (validated)."""
    if not isinstance(task_queue, str) or not task_queue:
        raise ValueError("task_queue must be a non-empty string")
    if args is None:
        args = []
    if not isinstance(args, list | tuple):
        raise TypeError("args must be a list of the workflow function's arguments")
    payload.dumps(list(args), "args")
    if config is not None:
        if not isinstance(config, dict):
            raise TypeError("config must be a dict (the workflow's retry settings)")
        RetryPolicy.of(config)
        payload.dumps(config, "config")
    return {"workflow_name": function_name(workflow_name), "task_queue": task_queue,
            "args": list(args), "config": config or {}}


def spec_of(values: dict[str, Any]) -> ScheduleSpec:
    """The timing keywords (all of ``TIMING``) as a validated spec."""
    return parse_spec(**{k: values.get(k) for k in TIMING})


def spec_values(spec: ScheduleSpec) -> dict[str, Any]:
    """A stored spec back as keyword values (for an update that changes some of them)."""
    return {"cron": list(spec.cron) or None, "every": spec.every, "timezone": spec.timezone,
            "start_at": spec.start_at, "end_at": spec.end_at, "jitter": spec.jitter or None,
            "catchup_window": spec.catchup_window}


def check_note(value: Any) -> str | None:
    """A note is text or None."""
    if value is not None and not isinstance(value, str):
        raise TypeError("note must be a string or None")
    return value


def check_paused(value: Any) -> bool:
    """``paused`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError("paused must be True or False")
    return value


def overlap_or_none(value: Any) -> str | None:
    """An optional overlap policy (None: the schedule's own)."""
    return None if value is None else check_overlap(value)
