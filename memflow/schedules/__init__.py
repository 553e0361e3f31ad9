"""Schedules: cron expressions and intervals that start workflows, run by every worker.

``client.schedule.create(...)`` stores a schedule; the scheduler inside each ``Worker.create``
process claims its due ticks through Postgres, so each tick starts exactly once. See
docs/schedules.md.
"""

from memflow.schedules.client import ScheduleClient, ScheduleDescription, ScheduleHandle
from memflow.schedules.spec import OVERLAP_POLICIES, ScheduleSpec

__all__ = ["OVERLAP_POLICIES", "ScheduleClient", "ScheduleDescription", "ScheduleHandle",
           "ScheduleSpec"]
