"""Continue-as-new: one statement ends a run as ``"continued"`` and starts the next run of its
workflow id, with an empty history and the old run's entity and search fields.

The old run's row moves to ``runs`` (readable by its run id, with ``$continued_to`` in its
config); the ``workflows`` row of the id becomes the new run in place (so the id is never
free in between: a start racing the hand-over sees it live), its config records
``$first_run_id`` and ``$continued_from``, and its first pass is enqueued. Update requests
the old run had not admitted yet move to the new run (their callers follow). What the old run
still had open is dropped: its tasks (timers, activities), its hook threads (their
``exec_hook`` waiters fail). A signal a wait of the old run received but its code never
consumed is kept for the next ``wait_for`` of its id, and a statement run first in the same
transaction takes the signal locks of the run's waits, so a signal sent during the hand-over
is either seen here or finds the id's new run (and is kept for it): none is lost.
"""

from __future__ import annotations

from typing import Any

from memflow import commands as durable
from memflow.store.commands import Statement, Thread
from memflow.store.fragments import NOTIFY_WOKEN, RUN_COLUMNS, WAKE, fail_hook_waiters

# Serialise with senders of the signals the run's open waits are for (see signal_lock).
LOCK_SIGNALS = """SELECT count(pg_advisory_xact_lock(hashtext('memflow-signal'), hashtext(name)))
  FROM (SELECT DISTINCT name FROM {s}.steps
         WHERE run_id = %(run_id)s AND kind = 'wait' AND seq IS NULL AND name IS NOT NULL
         ORDER BY name) n"""


# What the continued run is archived with: its own columns, but for these (every other column
# of ``RUN_COLUMNS``, a later migration's too, is copied as it is).
_ARCHIVED_AS = {
    "status": "'continued'", "result": "NULL", "error": "NULL",
    "config": "config || jsonb_build_object('$continued_to', %(new_run_id)s::text)",
    "updated_at": "{s}.clock()", "completed_at": "{s}.clock()",
    "expire_at": "{s}.clock() + expire_seconds * interval '1 second'",
}


def _archived_columns() -> str:
    names = [c.strip() for c in RUN_COLUMNS.split(",")]
    return ", ".join(_ARCHIVED_AS.get(c, c) for c in names)


# The run's deadline task re-armed for the next run (``memflow.workflow.timeouts``): due when
# the execution deadline (from the first run's start) or the new run's own ``run_timeout``
# passes, whichever is nearer, failing it with that bound's error. Unleased, so a worker
# that claimed it for the old run finds it no longer its own and leaves it.
_REARMED = """SELECT id, least(ex_due, run_due) AS due,
       CASE WHEN run_due IS NOT NULL AND (ex_due IS NULL OR run_due < ex_due)
            THEN payload->'run'->'error' ELSE coalesce(payload->'execution'->'error',
                                                         payload->'error') END AS error
  FROM (SELECT id, payload,
               to_timestamp((payload->>'started_at')::float8
                            + (payload->'execution'->>'seconds')::float8) AS ex_due,
               {s}.clock() + (payload->'run'->>'seconds')::float8 * interval '1 second'
                 AS run_due
          FROM {s}.tasks WHERE run_id = %(run_id)s AND kind = 'x') x"""


CONTINUE_CTES = f"""prev AS (
    SELECT {RUN_COLUMNS}, version, trace FROM {{s}}.workflows
     WHERE run_id = %(run_id)s AND status = 'running'),
arch AS (
    INSERT INTO {{s}}.runs ({RUN_COLUMNS})
    SELECT {_archived_columns()}
      FROM prev
    RETURNING run_id),
fin AS (
    UPDATE {{s}}.workflows w
       SET run_id = %(new_run_id)s, name = %(new_name)s, task_queue = %(new_queue)s,
           args = %(new_args)s, result = NULL, error = NULL, attempt = 1, version = 0,
           config = (w.config - '$continued_to') || jsonb_build_object(
               '$first_run_id', coalesce(w.config->>'$first_run_id', w.run_id),
               '$continued_from', w.run_id),
           created_at = {{s}}.clock(), updated_at = {{s}}.clock(), completed_at = NULL,
           expire_at = NULL
      FROM prev WHERE w.workflow_id = prev.workflow_id AND w.run_id = prev.run_id
       AND w.status = 'running' AND w.version = prev.version
    RETURNING w.workflow_id, w.run_id, w.name, w.task_queue, w.args, w.config, w.trace,
              w.priority, prev.version + 1 AS version),
gone AS (DELETE FROM {{s}}.tasks
           WHERE run_id = %(run_id)s AND kind <> 'x' AND EXISTS (SELECT 1 FROM fin)),
deadline_moved AS (
    UPDATE {{s}}.tasks t
       SET run_id = %(new_run_id)s, lease_owner = NULL,
           visible_at = coalesce(d.due, t.visible_at),
           payload = t.payload || jsonb_build_object('error', d.error)
      FROM ({_REARMED}) d
     WHERE t.id = d.id AND EXISTS (SELECT 1 FROM fin)
    RETURNING t.id),
kept AS (
    INSERT INTO {{s}}.signals (signal_id, data)
    SELECT s.name, s.result FROM {{s}}.steps s
     WHERE s.run_id = %(run_id)s AND s.kind = 'wait' AND s.status = 'done' AND s.seq IS NULL
       AND NOT (s.dim = '' AND s.idx = ANY(%(consumed)s::int[]))
       AND EXISTS (SELECT 1 FROM fin)
     ORDER BY s.completed_at, s.dim, s.idx
    RETURNING id),
moved AS (
    UPDATE {{s}}.updates SET run_id = %(new_run_id)s
     WHERE run_id = %(run_id)s AND status = 'requested' AND EXISTS (SELECT 1 FROM fin)
    RETURNING update_id),
next_pass AS (
    INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, priority, payload)
    SELECT task_queue, 'w', run_id, '',
           priority,
           jsonb_build_object('start', jsonb_build_object(
               'workflow_id', workflow_id, 'name', name, 'args', args, 'config', config,
               'trace', trace, 'at', extract(epoch FROM {{s}}.clock())),
               'inbox', EXISTS (SELECT 1 FROM {{s}}.updates
                                 WHERE run_id = %(run_id)s AND status = 'requested'))
      FROM fin
    RETURNING queue),
hooks_shut AS (
    UPDATE {{s}}.threads th
       SET status = 'failed', completed_at = {{s}}.clock(),
           error = jsonb_build_object(
               'message', 'hook ' || th.name || ' of workflow ' || %(workflow_id)s::text
                          || ' ended with its run (continued as new)',
               'code', 598, 'type', 'MemFlowFatalError', 'stack', '')
     WHERE th.run_id = %(run_id)s AND th.status = 'running' AND EXISTS (SELECT 1 FROM fin)
    RETURNING th.parent_run_id, th.parent_dim, th.parent_idx, th.error),
{fail_hook_waiters("woken", "hooks_shut")},
{WAKE.strip()}"""

CONTINUE_COLS = f"""(SELECT count(*) FROM fin) AS finished,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM next_pass) q)
         AS notified,
       (SELECT count(*) FROM ({NOTIFY_WOKEN}) n) AS notified_woken,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'd:' || workflow_id) FROM fin) nd)
         AS notified_done"""


def continue_params(t: Thread, c: durable.ContinueAsNew, consumed: list[int],
                    channel: str) -> dict[str, Any]:
    """The parameters of ``CONTINUE_CTES``: ``consumed`` are the steps of the main thread
    whose results the last pass consumed (their signals are not kept)."""
    return {"run_id": t.run_id, "workflow_id": t.workflow_id, "new_run_id": c.run_id,
            "new_name": c.workflow_name, "new_queue": c.task_queue, "new_args": c.args_json,
            "consumed": consumed, "channel": channel}


def continue_parts(t: Thread, c: durable.ContinueAsNew, consumed: list[int],
                   channel: str) -> tuple[str, str, dict[str, Any]]:
    """The CTEs, result columns and parameters fused into a pass's fenced head statement."""
    return CONTINUE_CTES, CONTINUE_COLS, continue_params(t, c, consumed, channel)


def lock_signals(t: Thread) -> Statement:
    """The statement run before the hand-over (see the module's docstring)."""
    return LOCK_SIGNALS, {"run_id": t.run_id}


def continue_statements(t: Thread, c: durable.ContinueAsNew, channel: str) -> list[Statement]:
    """The hand-over alone (unfenced): the signal locks, then one statement."""
    return [lock_signals(t),
            (f"WITH {CONTINUE_CTES}\nSELECT {CONTINUE_COLS}",
             continue_params(t, c, [], channel))]
