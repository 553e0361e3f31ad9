"""When a schedule ticks: cron expressions (parsed by ``cronsim``) and fixed intervals.

Times are computed in the schedule's IANA time zone. DST follows Debian cron (as ``cronsim``
does): a cron expression with a fixed minute and hour (``30 2 * * *``) that names a local time
which does not exist on a spring-forward day runs once, at the first valid minute after it
(03:00); a local time that occurs twice on a fall-back day runs once, at its first occurrence.
Expressions with a wildcard in the minute or hour field (``*/15 * * * *``, ``0 * * * *``) and
six-field expressions (with seconds) follow real time: they tick at every matching wall-clock
time that exists, so a repeated hour is served twice and a skipped hour not at all. ``every``
intervals are elapsed time, aligned to the Unix epoch (``every="15 minutes"`` ticks at :00,
:15, :30, :45 UTC), unaffected by DST.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from memflow.durations import parse_duration

OVERLAP_POLICIES = ("skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other",
                    "allow_all")
DEFAULT_CATCHUP = 60.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScheduleSpec:
    """The validated timing of a schedule (JSON-serialisable through ``to_dict``)."""

    cron: tuple[str, ...] = ()
    every: int | None = None          # whole seconds
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: float = 0.0
    catchup_window: float = DEFAULT_CATCHUP

    @property
    def zone(self) -> tzinfo:
        """The schedule's time zone (``datetime.UTC`` for UTC)."""
        return UTC if self.timezone == "UTC" else ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON document (times in ISO 8601)."""
        return {"cron": list(self.cron), "every": self.every, "timezone": self.timezone,
                "start_at": _iso(self.start_at), "end_at": _iso(self.end_at),
                "jitter": self.jitter, "catchup_window": self.catchup_window}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ScheduleSpec:
        """The spec stored by ``to_dict`` (already validated when it was written)."""
        return cls(cron=tuple(doc.get("cron") or ()), every=doc.get("every"),
                   timezone=doc.get("timezone") or "UTC",
                   start_at=_from_iso(doc.get("start_at")), end_at=_from_iso(doc.get("end_at")),
                   jitter=float(doc.get("jitter") or 0.0),
                   catchup_window=float(doc.get("catchup_window", DEFAULT_CATCHUP)))

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after ``after`` (None when the schedule has ended)."""
        after = after.astimezone(UTC)
        if self.start_at is not None and after < self.start_at:
            after = self.start_at - timedelta(microseconds=1)
        candidates: list[datetime] = []
        if self.every is not None:
            n = math.floor((after - EPOCH).total_seconds() / self.every) + 1
            candidates.append(EPOCH + timedelta(seconds=n * self.every))
        zone = self.zone
        for expr in self.cron:
            found = _cron_next(expr, after.astimezone(zone))
            if found is not None:
                candidates.append(found.astimezone(UTC))
        if not candidates:
            return None
        tick = min(candidates)
        if self.end_at is not None and tick > self.end_at:
            return None
        return tick

    def ticks(self, after: datetime, until: datetime, cap: int) -> list[datetime]:
        """Up to ``cap`` ticks in ``(after, until]``, oldest first."""
        out: list[datetime] = []
        tick = self.next_after(after)
        while tick is not None and tick <= until and len(out) < cap:
            out.append(tick)
            tick = self.next_after(tick)
        return out

    def upcoming(self, now: datetime, count: int = 5) -> list[datetime]:
        """The next ``count`` ticks after ``now``, in the schedule's time zone."""
        zone = self.zone
        out: list[datetime] = []
        tick = self.next_after(now)
        while tick is not None and len(out) < count:
            out.append(tick.astimezone(zone))
            tick = self.next_after(tick)
        return out

    def jitter_of(self, schedule_id: str, tick: datetime) -> float:
        """The delay (seconds, below ``jitter``) of one tick's start: fixed per tick, so
        every worker computes the same one."""
        if not self.jitter:
            return 0.0
        digest = hashlib.sha256(f"{schedule_id}|{tick.isoformat()}".encode()).digest()
        return self.jitter * int.from_bytes(digest[:8], "big") / 2 ** 64


def _cron_next(expr: str, after: datetime) -> datetime | None:
    try:
        found: datetime = next(CronSim(expr, after))
    except StopIteration:
        return None
    # a fixed-time job's first occurrence of an ambiguous local time can lie before ``after``
    while found.astimezone(UTC) <= after.astimezone(UTC):
        try:
            found = next(CronSim(expr, found))
        except StopIteration:
            return None
    return found


def parse_spec(*, cron: Any, every: Any, timezone: Any, start_at: Any, end_at: Any,
               jitter: Any, catchup_window: Any) -> ScheduleSpec:
    """Validate the timing keywords of ``create``/``update``; ``ValueError`` names the field."""
    crons = _crons(cron)
    every_s = None if every is None else _every(every)
    if not crons and every_s is None:
        raise ValueError("a schedule needs cron= (one expression or a list) or every=")
    zone_name = _timezone(timezone)
    zone = UTC if zone_name == "UTC" else ZoneInfo(zone_name)
    start = _when(start_at, "start_at", zone)
    end = _when(end_at, "end_at", zone)
    if start is not None and end is not None and end < start:
        raise ValueError("end_at must not be before start_at")
    jitter_s = 0.0 if jitter is None else parse_duration(jitter, "jitter")
    window = DEFAULT_CATCHUP if catchup_window is None else parse_duration(
        catchup_window, "catchup_window")
    if window < 1:
        raise ValueError("catchup_window must be at least 1 second")
    return ScheduleSpec(cron=crons, every=every_s, timezone=zone_name, start_at=start,
                        end_at=end, jitter=jitter_s, catchup_window=window)


def check_overlap(value: Any, what: str = "overlap") -> str:
    """``value`` if it is one of the six overlap policies, else ``ValueError``."""
    if value not in OVERLAP_POLICIES:
        raise ValueError(f"{what} must be one of {', '.join(OVERLAP_POLICIES)}; got {value!r}")
    return str(value)


def _crons(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("cron must be a cron string or a non-empty list of them")
    probe = datetime(2000, 1, 1, tzinfo=UTC)
    for expr in items:
        if not isinstance(expr, str) or not expr.strip():
            raise ValueError(f"cron: {expr!r} is not a cron expression")
        try:
            CronSim(expr, probe)
        except (CronSimError, ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"cron: {expr!r} is not a valid cron expression ({exc})") from None
    return tuple(" ".join(e.split()) for e in items)


def _every(value: Any) -> int:
    seconds = parse_duration(value, "every")
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"every must be a whole number of seconds, at least 1; got {value!r}")
    return int(seconds)


def _timezone(value: Any) -> str:
    if value is None:
        return "UTC"
    if not isinstance(value, str) or not value:
        raise ValueError(f"timezone must be an IANA time zone name like 'Europe/Paris'; "
                         f"got {value!r}")
    if value.upper() == "UTC":
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"timezone: unknown IANA time zone {value!r}") from None
    return value


def _when(value: Any, what: str, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what}: cannot read {value!r} as an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime or an ISO 8601 string")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def tick_workflow_id(schedule_id: str, scheduled_at: datetime) -> str:
    """The workflow id of a tick's run: ``<schedule_id>-<UTC time to the second>Z``."""
    return f"{schedule_id}-{scheduled_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
