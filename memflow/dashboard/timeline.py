"""The Gantt layout of a run's steps: where each bar sits, and the lanes of parallel branches.

Positions are on a 0..1000 scale of the run's span (its start to its end, or to now while it
runs). Steps of one thread that overlap in time are parallel branches (``asyncio.gather``):
each gets its own lane, so the overview draws them side by side; a sequential thread is one lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from memflow.store.dashboard import StepRow

SCALE = 1000.0
MIN_WIDTH = 2.0


@dataclass(frozen=True)
class Bar:
    """One step on the timeline."""

    step: StepRow
    left: float
    width: float
    lane: int
    duration: float | None


@dataclass(frozen=True)
class Lane:
    """The bars of one lane of one thread (for the overview)."""

    dim: str
    number: int
    bars: list[Bar]


def thread_label(dim: str, names: dict[str, str | None]) -> str:
    """``main`` for the workflow's own thread, else ``hook <name>`` (or the raw dimension)."""
    if dim == "":
        return "main"
    name = names.get(dim)
    return f"hook {name}" if name else f"thread {dim}"


def layout(steps: list[StepRow], start: datetime, end: datetime | None,
           now: datetime | None = None) -> list[Bar]:
    """The bars of ``steps`` on the span ``[start, end]`` (``end`` None: still running)."""
    now = now or datetime.now(UTC)
    stop = end or now
    for s in steps:
        stop = max(stop, s.completed_at or now)
    span = max((stop - start).total_seconds(), 1e-6)
    bars: list[Bar] = []
    lane_ends: dict[str, list[datetime]] = {}
    for s in sorted(steps, key=lambda x: (x.dim, x.created_at, x.idx)):
        finished = s.completed_at or now
        lane = _take_lane(lane_ends.setdefault(s.dim, []), s.created_at, finished)
        left = max(0.0, (s.created_at - start).total_seconds() / span * SCALE)
        width = max(MIN_WIDTH, (finished - s.created_at).total_seconds() / span * SCALE)
        duration = None if s.completed_at is None else (
            s.completed_at - s.created_at).total_seconds()
        bars.append(Bar(s, round(min(left, SCALE - MIN_WIDTH), 2),
                        round(min(width, SCALE - min(left, SCALE - MIN_WIDTH)), 2),
                        lane, duration))
    bars.sort(key=lambda b: (b.step.dim, b.step.idx))
    return bars


def _take_lane(ends: list[datetime], begin: datetime, finish: datetime) -> int:
    """The first lane free at ``begin`` (a new one if none is), now busy until ``finish``."""
    for number, busy_until in enumerate(ends):
        if busy_until <= begin:
            ends[number] = finish
            return number
    ends.append(finish)
    return len(ends) - 1


def lanes(bars: list[Bar]) -> list[Lane]:
    """The bars grouped by thread and lane, main thread first."""
    grouped: dict[tuple[str, int], list[Bar]] = {}
    for bar in bars:
        grouped.setdefault((bar.step.dim, bar.lane), []).append(bar)
    return [Lane(dim, number, grouped[(dim, number)]) for dim, number in sorted(grouped)]
