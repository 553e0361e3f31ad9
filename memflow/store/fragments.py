"""SQL pieces shared by several statements of the store."""

from __future__ import annotations

import functools
from typing import Any


def hooks_open(run: str) -> str:
    """SQL: workflow row ``run`` has completed but keeps its hook channel open
    (``signal_in`` true), so its hook threads go on."""
    return f"({run}.status = 'completed' AND {run}.signal_in IS TRUE)"


def takes_hooks(run: str) -> str:
    """SQL: workflow row ``run`` accepts hook threads: it is running, or its hooks are open."""
    return f"({run}.status = 'running' OR {hooks_open(run)})"


def thread_may_run(run: str, thread_path: str) -> str:
    """SQL: the thread at ``thread_path`` (an SQL expression; ``''`` is the main thread) of
    workflow row ``run`` may still run: the run is live, or the thread is a hook of a run whose
    hooks are open. ``memflow.store.passes.thread_open`` is the same rule in Python."""
    return f"({run}.status = 'running' OR ({thread_path} <> '' AND {hooks_open(run)}))"


def of_chain(row: str, run: str) -> str:
    """SQL: workflow row ``row`` is the run a handle bound to run ``run`` (an SQL expression
    that may be NULL: not bound) acts on: any run when not bound; else run ``run`` itself, or —
    when that run continued as new — the later run of its chain (the same first run), as in
    Temporal, where a workflow's handle reaches the current run of its chain."""
    return f"""({run} IS NULL OR {row}.run_id = {run}
        OR coalesce({row}.config->>'$first_run_id', {row}.run_id) = (
            SELECT coalesce(r.config->>'$first_run_id', r.run_id) FROM {{s}}.runs r
             WHERE r.run_id = {run} AND r.status = 'continued'))"""


def live_threads(t: str) -> str:
    """The FROM/WHERE tail that joins the threads of relation ``t(run_id, dim)`` which may
    still run to their workflow (``w``) and hook (``th``) rows: the run is live, or the thread
    is a hook of a completed run that keeps its hook channel open (``signal_in`` true)."""
    return f"""JOIN {{s}}.workflows w ON w.run_id = {t}.run_id
       AND {thread_may_run("w", f"{t}.dim")}
      LEFT JOIN {{s}}.threads th ON th.run_id = {t}.run_id AND th.dim = {t}.dim
     WHERE {t}.dim = '' OR th.status = 'running'"""


# Wakes the threads listed in a CTE named ``woken(run_id, dim)``: upserts their pass task
# (bumping ``wake`` when one exists, so a pass in progress runs again) and yields the queue
# of each, for NOTIFY. Threads of workflows that are no longer running are left alone.
WAKE = f"""
wk AS (
    INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, priority)
    SELECT DISTINCT coalesce(th.task_queue, w.task_queue), 'w', woken.run_id, woken.dim,
           w.priority
      FROM woken
      {live_threads("woken")}
    ON CONFLICT (run_id, dim) WHERE kind = 'w' DO UPDATE SET wake = {{s}}.tasks.wake + 1
    RETURNING queue
)"""

NOTIFY_WOKEN = ("SELECT pg_notify(%(channel)s, 'q:' || queue) "
                "FROM (SELECT DISTINCT queue FROM wk) woken_queues")

# The columns a run is archived with (``runs`` was created LIKE ``workflows`` in migration 5:
# a migration that adds a column to ``workflows`` adds it to ``runs`` and here too).
RUN_COLUMNS = """workflow_id, run_id, name, task_queue, status, args, result, error,
    entity_type, entity, search, config, attempt, signal_in, parent_id, parent_run_id,
    parent_dim, parent_idx, created_at, updated_at, completed_at, expire_seconds, expire_at,
    concurrency_key, priority"""

# The owner an activity task is created leased to: the worker that scheduled it
# (``%(owner)s``, when it serves the activity's queue), unless the queue has limits — then the
# task waits for a claim, which takes a slot (memflow/store/flow.py).
LOCAL_OWNER = """(SELECT CASE WHEN %(owner)s::text IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM {s}.queue_limits l WHERE l.queue = %(queue)s)
    THEN %(owner)s::text END AS owner)"""


def notify_freed(rel: str) -> str:
    """SQL (a count): NOTIFY the queues of relation ``rel`` (column ``task_queue``) that have
    limits, whose work just freed a slot, so their waiting work is claimed at once."""
    return f"""(SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || l.queue)
                         FROM {{s}}.queue_limits l
                        WHERE l.queue IN (SELECT task_queue FROM {rel})) freed)"""


def ended_runs_report(count_as: str) -> str:
    """SQL select list of a statement that ended the runs of CTE ``fin`` (with
    ``SETTLE_PARENT`` and ``WAKE``): how many ended (as ``count_as``), and the NOTIFYs of the
    woken threads' queues, of each ended run (``d:<workflow_id>``) and of freed slots."""
    return f"""(SELECT count(*) FROM fin) AS {count_as},
       (SELECT count(*) FROM ({NOTIFY_WOKEN}) n) AS notified,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'd:' || workflow_id) FROM fin) nd)
         AS notified_done,
       {notify_freed("fin")} AS freed"""


# The values a run of a reused id is archived with: as it was, or — when a start with
# ``id_conflict_policy="terminate_existing"`` replaces it while live — terminated.
_ARCHIVED = """c.workflow_id, c.run_id, c.name, c.task_queue,
    CASE WHEN d.action = 'terminate' THEN 'interrupted' ELSE c.status END, c.args,
    CASE WHEN d.action = 'terminate' THEN NULL ELSE c.result END,
    CASE WHEN d.action = 'terminate' THEN %(terminate_error)s::jsonb ELSE c.error END,
    c.entity_type, c.entity, c.search, c.config, c.attempt, c.signal_in, c.parent_id,
    c.parent_run_id, c.parent_dim, c.parent_idx, c.created_at, c.updated_at,
    CASE WHEN d.action = 'terminate' THEN {s}.clock() ELSE c.completed_at END,
    c.expire_seconds,
    CASE WHEN d.action = 'terminate'
         THEN {s}.clock() + c.expire_seconds * interval '1 second' ELSE c.expire_at END,
    c.concurrency_key, c.priority"""

# What a start does with the id, decided on the current row locked ``FOR UPDATE`` (``held``), so
# racing starts of one id are serialised by the row and each decides on the latest run:
# ``skip`` (the caller's guard says the start already happened), ``insert`` (a new id),
# ``replace`` (a finished run whose id may be reused, per ``id_reuse_policy``), ``existing``
# (a live run, ``use_existing``), ``terminate`` (a live run, ``terminate_existing``) or
# ``duplicate``. A finished run whose ``expire`` has not passed always holds its id. A live run
# to terminate that this statement's snapshot does not show yet (it was started by a racing
# start that committed while this one waited for the row) is ``stale``: its tasks are not
# visible here to be dropped, so the caller runs the statement again (a fresh snapshot).
def _decide(guard: str) -> str:
    return f"""held AS (
    SELECT {RUN_COLUMNS} FROM {{s}}.workflows
     WHERE workflow_id = %(workflow_id)s FOR UPDATE),
decide AS (
    SELECT CASE
        WHEN NOT ({guard}) THEN 'skip'
        WHEN c.run_id IS NULL THEN 'insert'
        WHEN c.status <> 'running' AND c.expire_at IS NOT NULL AND c.expire_at <= {{s}}.clock()
        THEN CASE WHEN %(id_reuse_policy)s = 'reject_duplicate' THEN 'duplicate'
                  WHEN %(id_reuse_policy)s = 'allow_duplicate_failed_only'
                       AND c.status NOT IN ('failed', 'interrupted', 'cancelled', 'timed_out')
                  THEN 'duplicate'
                  ELSE 'replace' END
        WHEN c.status IN ('running', 'pending') AND %(id_conflict_policy)s = 'terminate_existing'
             AND NOT EXISTS (SELECT 1 FROM {{s}}.workflows v
                              WHERE v.workflow_id = %(workflow_id)s AND v.run_id = c.run_id)
        THEN 'stale'
        WHEN c.status IN ('running', 'pending')
        THEN CASE %(id_conflict_policy)s WHEN 'use_existing' THEN 'existing'
                                         WHEN 'terminate_existing' THEN 'terminate'
                                         ELSE 'duplicate' END
        ELSE 'duplicate' END AS action,
        c.run_id AS old_run_id
      FROM (SELECT 1) one LEFT JOIN held c ON true),"""


def fail_hook_waiters(name: str, closed: str) -> str:
    """CTE ``name``: the ``exec_hook`` steps awaiting the hook threads that CTE ``closed`` just
    closed (it returns their ``parent_run_id, parent_dim, parent_idx`` and ``error``) fail
    with that error; returns the woken threads' ``run_id, dim``. (``= ANY(ARRAY(...))``
    makes the planner look the steps up by key, never scan every pending wait.)"""
    return f"""{name} AS (
    UPDATE {{s}}.steps s
       SET status = 'failed', error = {closed}.error, completed_at = {{s}}.clock()
      FROM {closed}
     WHERE s.run_id = ANY(ARRAY(SELECT parent_run_id FROM {closed}))
       AND s.run_id = {closed}.parent_run_id AND s.dim = {closed}.parent_dim
       AND s.idx = {closed}.parent_idx AND s.status = 'pending' AND s.kind = 'exec_hook'
    RETURNING s.run_id, s.dim)"""


def _archive() -> str:
    """The old run of a reused (or taken over) id, copied to ``runs`` in the statement that
    replaces it — from ``cur``, the row as it was when locked. Its hook threads still open are
    closed and its tasks dropped — the id now names another run — and exec_hook steps
    awaiting them fail and wake their threads; a terminated run also settles the parent step
    that waited for it (exec_child). Announced by the NOTIFYs of ``arch_wake`` and
    ``arch_done`` (the CTEs run unreferenced)."""
    return f"""arch AS (
    INSERT INTO {{s}}.runs ({RUN_COLUMNS})
    SELECT {_ARCHIVED} FROM held c, decide d
     WHERE d.action IN ('replace', 'terminate') AND EXISTS (SELECT 1 FROM up)
    ON CONFLICT (run_id) DO NOTHING
    RETURNING run_id, workflow_id, status, error, parent_run_id, parent_dim, parent_idx),
arch_threads AS (
    UPDATE {{s}}.threads SET status = 'failed', completed_at = {{s}}.clock(),
           error = jsonb_build_object('message', 'hook ' || name || ' ended: its workflow id '
                                      || %(workflow_id)s::text || ' was reused by a new run',
                                      'code', 598, 'type', 'MemFlowFatalError', 'stack', '')
     WHERE run_id = (SELECT run_id FROM arch) AND status = 'running'
    RETURNING parent_run_id, parent_dim, parent_idx, error),
arch_tasks AS (DELETE FROM {{s}}.tasks WHERE run_id = (SELECT run_id FROM arch)),
{fail_hook_waiters("arch_waiters", "arch_threads")},
arch_parent AS (
    UPDATE {{s}}.steps s SET status = 'failed', error = a.error, completed_at = {{s}}.clock()
      FROM arch a
     WHERE a.status = 'interrupted' AND s.run_id = a.parent_run_id AND s.dim = a.parent_dim
       AND s.idx = a.parent_idx AND s.status = 'pending' AND s.kind = 'exec_child'
    RETURNING s.run_id, s.dim),
arch_woken AS (SELECT run_id, dim FROM arch_waiters UNION SELECT run_id, dim FROM arch_parent),
arch_wake AS (
    INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, priority)
    SELECT DISTINCT coalesce(th.task_queue, w.task_queue), 'w', arch_woken.run_id,
           arch_woken.dim, w.priority
      FROM arch_woken
      {live_threads("arch_woken")}
    ON CONFLICT (run_id, dim) WHERE kind = 'w' DO UPDATE SET wake = {{s}}.tasks.wake + 1
    RETURNING pg_notify(%(channel)s, 'q:' || queue)),
arch_done AS (
    SELECT pg_notify(%(channel)s, 'd:' || workflow_id) FROM arch WHERE status = 'interrupted')"""

_UP_HEAD = """
up AS (
    INSERT INTO {s}.workflows AS cur (workflow_id, run_id, name, task_queue, status, args,
        entity_type, search, config, signal_in, parent_id, parent_run_id, parent_dim,
        parent_idx, expire_seconds, expire_at, trace, concurrency_key, priority)
    SELECT %(workflow_id)s, %(run_id)s, %(name)s, %(task_queue)s,
        -- a start into a queue with limits (or debounced) waits for admission by a claim
        CASE WHEN %(status)s = 'running' AND (%(debounce)s::float8 IS NOT NULL OR EXISTS (
                  SELECT 1 FROM {s}.queue_limits l WHERE l.queue = %(task_queue)s))
             THEN 'pending' ELSE %(status)s END, %(args)s,
        %(entity_type)s, %(search)s, %(config)s, %(signal_in)s, %(parent_id)s,
        %(parent_run_id)s, %(parent_dim)s, %(parent_idx)s, %(expire)s,
        CASE WHEN %(pending)s::float8 IS NULL THEN NULL
             ELSE {s}.clock() + %(pending)s::float8 * interval '1 second' END,
        %(trace)s::jsonb, %(concurrency_key)s,
        -- a child started without a priority of its own (NULL) takes its parent's
        coalesce(%(priority)s::int, (SELECT p.priority FROM {s}.workflows p
                                      WHERE p.run_id = %(parent_run_id)s), 0)
      FROM decide WHERE decide.action IN ('insert', 'replace', 'terminate')
"""

_UP_REUSE = """    ON CONFLICT (workflow_id) DO UPDATE SET
        run_id = EXCLUDED.run_id, name = EXCLUDED.name, task_queue = EXCLUDED.task_queue,
        status = EXCLUDED.status, args = EXCLUDED.args, result = NULL, error = NULL,
        entity_type = EXCLUDED.entity_type, entity = '{}'::jsonb, search = EXCLUDED.search,
        config = EXCLUDED.config, attempt = 1, version = 0, signal_in = EXCLUDED.signal_in,
        parent_id = EXCLUDED.parent_id, parent_run_id = EXCLUDED.parent_run_id,
        parent_dim = EXCLUDED.parent_dim, parent_idx = EXCLUDED.parent_idx,
        created_at = {s}.clock(), updated_at = {s}.clock(), completed_at = NULL,
        expire_seconds = EXCLUDED.expire_seconds, expire_at = EXCLUDED.expire_at,
        trace = EXCLUDED.trace, concurrency_key = EXCLUDED.concurrency_key,
        priority = EXCLUDED.priority
      WHERE cur.run_id = (SELECT old_run_id FROM decide)
        AND (SELECT action FROM decide) IN ('replace', 'terminate')
"""

_UP_FRESH = """    ON CONFLICT (workflow_id) DO NOTHING
"""

_UP_TAIL = """    RETURNING run_id, task_queue, status, workflow_id, name, args, config, trace,
              priority
),
first_pass AS (
    INSERT INTO {s}.tasks (queue, kind, run_id, dim, payload, priority, ckey, gate, visible_at)
    SELECT task_queue, 'w', run_id, '',
           jsonb_build_object('start', jsonb_build_object(
               'workflow_id', workflow_id, 'name', name, 'args', args, 'config', config,
               'trace', trace, 'at', extract(epoch FROM {s}.clock()))),
           priority, %(concurrency_key)s, status = 'pending',
           {s}.clock() + coalesce(%(debounce)s::float8, 0) * interval '1 second'
      FROM up WHERE status = 'running' OR %(status)s = 'running'
    RETURNING queue
),
deadline AS (
    INSERT INTO {s}.tasks (queue, kind, run_id, dim, payload, visible_at)
    SELECT task_queue, 'x', run_id, '',
           %(timeout_payload)s::jsonb
             || jsonb_build_object('started_at', extract(epoch FROM {s}.clock())),
           {s}.clock() + %(timeout)s::float8 * interval '1 second'
      FROM up WHERE %(timeout)s::float8 IS NOT NULL
    RETURNING queue
)"""

# ``decide`` of a start that takes only a new id: an existing row makes ``up``'s insert do
# nothing (no ``up`` row; the caller then runs the locking statement of ``start_ctes``).
def _decide_fresh(guard: str) -> str:
    return f"""decide AS (
    SELECT CASE WHEN {guard} THEN 'insert' ELSE 'skip' END AS action, NULL::text AS old_run_id),"""


@functools.cache
def start_ctes(guard: str = "true", *, fresh: bool = False) -> str:
    """The CTEs that start a workflow run and enqueue its first pass (unless it is created
    pending), when ``guard`` (an SQL condition) holds, deciding in one statement what the id
    allows (CTE ``decide``: see ``_DECIDE``; parameters ``id_reuse_policy`` and
    ``id_conflict_policy`` of ``start_params``). CTE ``up`` returns the started run (no row
    when none started), ``first_pass`` its task's queue, ``decide`` the ``action`` and the
    ``old_run_id`` of the run that held the id. When the id is reused (or taken over) the old
    run is first copied into ``runs`` (so it stays readable by its run id; its steps are keyed
    by run id and stay too) and what of it still ran is closed.

    A start that found no row but lost the insert to a concurrent start of the same id
    (``action`` ``insert``, no ``up`` row), or ``stale``, decided on a stale view: the caller
    runs it again, and then sees the winner's row.

    With ``fresh``, the short statement of the common case: only a new id starts (the same
    columns, admission and deadline), nothing is locked or archived, and an id that exists
    (live, finished, or being inserted by a racing start) leaves ``up`` empty — the caller then
    decides with the full statement."""
    if fresh:
        return "\n" + _decide_fresh(guard) + _UP_HEAD + _UP_FRESH + _UP_TAIL
    return "\n" + _decide(guard) + _UP_HEAD + _UP_REUSE + _UP_TAIL + ",\n" + _archive()


# Settles what waits for the runs in CTE ``fin`` that just ended, and wakes it (CTE ``woken``):
# the step of a parent that waits for the run (exec_child), and — since hook threads end with
# their run (unless it completed with ``signal_in`` true, keeping its hook channel open) — the
# run's open hook threads, which are closed, and the exec_hook steps that awaited them, which
# fail with a clear error (``= ANY(ARRAY(...))`` makes the planner look the steps up by key,
# never scan every pending wait). ``fin`` returns workflow_id, run_id, parent_run_id, parent_dim,
# parent_idx, status, result, error and signal_in.
SETTLE_PARENT = f"""
settled AS (
    UPDATE {{s}}.steps s
       SET status = CASE WHEN fin.status = 'completed' THEN 'done' ELSE 'failed' END,
           result = fin.result, error = fin.error, completed_at = {{s}}.clock()
      FROM fin
     WHERE s.run_id = fin.parent_run_id AND s.dim = fin.parent_dim AND s.idx = fin.parent_idx
       AND s.status = 'pending' AND s.kind = 'exec_child'
    RETURNING s.run_id, s.dim),
hooks_shut AS (
    UPDATE {{s}}.threads th
       SET status = 'failed', completed_at = {{s}}.clock(),
           error = jsonb_build_object(
               'message', 'hook ' || th.name || ' of workflow ' || fin.workflow_id
                          || ' ended with its run (' || fin.status || ')',
               'code', 598, 'type', 'MemFlowFatalError', 'stack', '')
      FROM fin
     WHERE th.run_id = fin.run_id AND th.status = 'running'
       AND NOT {hooks_open("fin")}
    RETURNING th.parent_run_id, th.parent_dim, th.parent_idx, th.error),
{fail_hook_waiters("hook_waiters", "hooks_shut")},
woken AS (SELECT run_id, dim FROM settled UNION SELECT run_id, dim FROM hook_waiters),
"""


def start_params(*, workflow_id: str, run_id: str, name: str, task_queue: str, args_json: str,
                 config_json: str = "{}", status: str = "running", entity_type: str | None = None,
                 search_json: str = "{}", signal_in: bool | None = None, expire: float = 1.0,
                 pending: float | None = None, trace_json: str | None = None,
                 id_reuse_policy: str = "allow_duplicate", id_conflict_policy: str = "fail",
                 terminate_error_json: str | None = None, timeout: float | None = None,
                 timeout_payload_json: str | None = None, priority: int = 0,
                 concurrency_key: str | None = None,
                 debounce: float | None = None) -> dict[str, Any]:
    """The parameters of the ``START`` fragment, the one place they are named: every caller
    (client starts, child starts, schedule ticks) builds them here, so a new parameter of the
    statement cannot be forgotten by one of them. The parent's columns are set by ``child``.
    ``timeout`` (seconds) creates the run's deadline task (kind ``x``, see
    ``memflow.store.control``) with ``timeout_payload_json`` (``{"error": ...}``)."""
    return {"workflow_id": workflow_id, "run_id": run_id, "name": name,
            "task_queue": task_queue, "status": status, "args": args_json,
            "entity_type": entity_type, "search": search_json, "config": config_json,
            "signal_in": signal_in, "parent_id": None, "parent_run_id": None,
            "parent_dim": None, "parent_idx": None, "expire": expire, "pending": pending,
            "trace": trace_json, "id_reuse_policy": id_reuse_policy,
            "id_conflict_policy": id_conflict_policy, "terminate_error": terminate_error_json,
            "timeout": timeout, "timeout_payload": timeout_payload_json,
            "priority": priority, "concurrency_key": concurrency_key, "debounce": debounce}
