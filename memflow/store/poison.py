"""Poison work: tasks whose handling keeps failing inside the engine are retried a bounded
number of times with backoff, then parked (never claimed again) with their error kept."""

from __future__ import annotations

from typing import Any

from memflow.store.scope import Part
from memflow.store.tasks import Task

# A parked task stays in ``tasks`` (so the run shows why it does not move) but is never visible.
PARK_DELAY = "interval '1000 years'"  # beyond the longest duration accepted (100 years)

_FAIL_TASK = f"""WITH f AS (
    UPDATE {{s}}.tasks SET lease_owner = NULL, failures = failures + 1, error = %(error)s,
           parked_at = CASE WHEN failures + 1 >= %(bound)s THEN {{s}}.clock() END,
           visible_at = CASE WHEN failures + 1 >= %(bound)s THEN {{s}}.clock() + {PARK_DELAY}
                        ELSE {{s}}.clock() + least(
                            %(base)s::float8 * power(2, least(failures, 30)),
                            %(cap)s::float8) * interval '1 second' END
     WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(token)s
    RETURNING queue, failures, parked_at IS NOT NULL AS parked)
SELECT failures, parked, CASE WHEN NOT parked THEN pg_notify(%(channel)s, 'q:' || queue) END
  FROM f"""

_UNPARK = """WITH u AS (
    UPDATE {s}.tasks t SET parked_at = NULL, failures = 0, visible_at = {s}.clock()
      FROM {s}.workflows w
     WHERE w.workflow_id = %(id)s AND t.run_id = w.run_id AND t.parked_at IS NOT NULL
    RETURNING t.queue)
SELECT count(*) AS n, (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue)
                                            FROM (SELECT DISTINCT queue FROM u) d) x)
         AS notified
  FROM u"""


class PoisonQueries(Part):
    """Failure accounting of tasks."""


    async def fail_task(self, task: Task, owner: str, error_json: str, bound: int,
                        base: float, cap: float = 30.0) -> tuple[int, bool]:
        """Count one engine failure of a task this owner holds and give it back: visible again
        after ``base * 2**(failures-1)`` seconds (at most ``cap``), or parked with its error
        once it has failed ``bound`` times. Returns (failures, parked); (0, False) when the
        owner no longer holds the task under the same claim (fenced like ``release``)."""
        rows = await self.store.fetch(self.sql(_FAIL_TASK), {
            "id": task.id, "token": task.attempts, "owner": owner, "error": error_json,
            "bound": bound, "base": base, "cap": cap, "channel": self.namespace})
        if not rows:
            return 0, False
        return int(rows[0]["failures"]), bool(rows[0]["parked"])

    async def clear_failures(self, task: Task, owner: str) -> None:
        """Forget the failures of a task this owner holds (its last handling succeeded)."""
        await self.store.fetch(self.sql(
            """UPDATE {s}.tasks SET failures = 0, error = NULL
                WHERE id = %(id)s AND lease_owner = %(owner)s AND attempts = %(token)s"""),
            {"id": task.id, "owner": owner, "token": task.attempts})

    async def failing_passes(self, run_id: str) -> list[dict[str, Any]]:
        """The pass tasks of a run that failed and wait for their retry (not parked), with
        their thread, failures and error: e.g. a replay diverging from the history."""
        return list(await self.store.fetch(self.sql(
            """SELECT kind, queue, dim, idx, failures, error FROM {s}.tasks
                WHERE run_id = %(run_id)s AND kind = 'w' AND failures > 0
                  AND error IS NOT NULL AND parked_at IS NULL ORDER BY id"""),
            {"run_id": run_id}))

    async def parked_tasks(self, run_id: str) -> list[dict[str, Any]]:
        """The parked tasks of a run, oldest first: kind, queue, thread, step, failures,
        error and when they were parked."""
        return list(await self.store.fetch(self.sql(
            """SELECT kind, queue, dim, idx, failures, error, parked_at FROM {s}.tasks
                WHERE run_id = %(run_id)s AND parked_at IS NOT NULL ORDER BY parked_at, id"""),
            {"run_id": run_id}))

    async def unpark(self, workflow_id: str) -> int:
        """Make the parked tasks of the latest run of ``workflow_id`` visible again (after the
        cause is fixed, e.g. the missing workflow is deployed); returns how many."""
        rows = await self.store.fetch(self.sql(_UNPARK), {"id": workflow_id,
                                                        "channel": self.namespace})
        return int(rows[0]["n"]) if rows else 0
