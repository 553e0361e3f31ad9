"""The SQL of each durable command a workflow pass records.

Every statement first inserts the command's step row ``ON CONFLICT DO NOTHING`` and does its
other writes only when that insert happened, so a pass that runs twice records each step once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memflow import commands as durable
from memflow import payload
from memflow.store.fragments import (
    LOCAL_OWNER,
    NOTIFY_WOKEN,
    SETTLE_PARENT,
    WAKE,
    ended_runs_report,
    start_ctes,
    start_params,
    takes_hooks,
    thread_may_run,
)


@dataclass
class Thread:
    """Where a command belongs: the run, its thread (dimension) and the thread's queue."""

    workflow_id: str
    run_id: str
    dim: str
    task_queue: str


Statement = tuple[str, dict[str, Any]]

STEP = """INSERT INTO {s}.steps (run_id, dim, idx, kind, name, status, input, result, error,
                               completed_at)
VALUES (%(run_id)s, %(dim)s, %(idx)s, %(kind)s, %(name)s, %(status)s, %(input)s, %(result)s,
        %(error)s, CASE WHEN %(status)s = 'pending' THEN NULL ELSE {s}.clock() END)
ON CONFLICT DO NOTHING RETURNING status, result, error"""


# The priority of the run a command belongs to: its timers are claimed with it, like its passes.
RUN_PRIORITY = ("coalesce((SELECT priority FROM {s}.workflows WHERE run_id = %(run_id)s), 0)")


def step_params(t: Thread, c: durable.Command, status: str = "pending", result: Any = None,
                error: Any = None, input_json: str | None = None) -> dict[str, Any]:
    """The parameters of a step row for command ``c`` of thread ``t`` (values as JSON text)."""
    return {"run_id": t.run_id, "dim": t.dim, "idx": c.idx, "kind": c.kind,
            "name": c.step_name, "status": status, "input": input_json, "result": result,
            "error": error}


def activity_parts(t: Thread, c: durable.ActivityCall,
                   channel: str) -> tuple[str, str, dict[str, Any]]:
    """The CTEs and result columns that record an activity step and enqueue its task, so a
    pass can fuse them with its own bookkeeping into one statement."""
    ctes = f"""st AS ({STEP}),
q AS (INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, idx, payload, lease_owner, attempts,
                              visible_at, priority, ckey)
      SELECT %(queue)s, 'a', %(run_id)s, %(dim)s, %(idx)s, %(payload)s, lo.owner,
             CASE WHEN lo.owner IS NULL THEN 0 ELSE 1 END,
             {{s}}.clock() + CASE WHEN lo.owner IS NULL THEN 0 ELSE %(lease)s::float8 END
                             * interval '1 second',
             %(priority)s, %(ckey)s
        FROM st, {LOCAL_OWNER} lo RETURNING id, queue, lease_owner)"""
    cols = """(SELECT id FROM q) AS id, (SELECT lease_owner FROM q) AS lease_owner,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue)
                                FROM q WHERE lease_owner IS NULL) n) AS notified"""
    params = step_params(t, c)
    local = c.leased_to
    params.update(queue=c.task_queue, payload=c.task_payload_json, channel=channel,
                  owner=local.owner if local is not None else None,
                  lease=local.seconds if local is not None else None,
                  priority=c.priority, ckey=c.concurrency_key)
    return ctes, cols, params


def activity(t: Thread, c: durable.ActivityCall, channel: str) -> list[Statement]:
    """Record an activity step and enqueue its task on the activity topic.

    With ``leased_to`` set on the command the task is created already leased to that
    worker, which runs it at once (no NOTIFY, no claim)."""
    ctes, cols, params = activity_parts(t, c, channel)
    return [(f"WITH {ctes}\nSELECT {cols}", params)]


def sleep(t: Thread, c: durable.Sleep, channel: str) -> list[Statement]:
    """Record a durable timer: a pending step and a task that becomes visible when it is due."""
    sql = f"""WITH st AS ({STEP}),
q AS (INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, idx, payload, visible_at, priority)
      SELECT %(queue)s, 't', %(run_id)s, %(dim)s, %(idx)s, %(payload)s,
             {{s}}.clock() + %(seconds)s::float8 * interval '1 second', {RUN_PRIORITY}
        FROM st RETURNING queue)
SELECT pg_notify(%(channel)s, 'q:' || queue) FROM q"""
    params = step_params(t, c, input_json=payload.dumps(c.seconds))
    params.update(queue=t.task_queue, seconds=c.seconds, channel=channel,
                  payload='{"result": ' + repr(float(c.seconds)) + "}")
    return [(sql, params)]


def signal_lock(signal_id: str) -> Statement:
    """Serialise senders and waiters of one signal id within the namespace."""
    return ("SELECT pg_advisory_xact_lock(hashtext('memflow-signal'), hashtext(%(sid)s))",
            {"sid": signal_id})


def wait(t: Thread, c: durable.WaitForSignal, channel: str) -> list[Statement]:
    """Record a wait for a signal, consuming a signal that was sent before the wait."""
    sql = f"""WITH sig AS (
    DELETE FROM {{s}}.signals WHERE id = (
        SELECT id FROM {{s}}.signals WHERE signal_id = %(name)s
           AND NOT EXISTS (SELECT 1 FROM {{s}}.steps
                            WHERE run_id = %(run_id)s AND dim = %(dim)s AND idx = %(idx)s)
         ORDER BY id LIMIT 1)
    RETURNING data),
st AS (
    INSERT INTO {{s}}.steps (run_id, dim, idx, kind, name, status, result, completed_at)
    SELECT %(run_id)s, %(dim)s, %(idx)s, 'wait', %(name)s,
           CASE WHEN EXISTS (SELECT 1 FROM sig) THEN 'done' ELSE 'pending' END,
           (SELECT data FROM sig),
           CASE WHEN EXISTS (SELECT 1 FROM sig) THEN {{s}}.clock() END
    ON CONFLICT DO NOTHING RETURNING status, result, error),
tm AS (
    INSERT INTO {{s}}.tasks (queue, kind, run_id, dim, idx, payload, visible_at, priority)
    SELECT %(queue)s, 't', %(run_id)s, %(dim)s, %(idx)s, %(payload)s,
           {{s}}.clock() + %(timeout)s::float8 * interval '1 second', {RUN_PRIORITY}
      FROM st WHERE st.status = 'pending' AND %(timeout)s::float8 IS NOT NULL
    RETURNING queue)
SELECT st.status, st.result, st.error,
       (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM tm) AS notified
  FROM st"""
    params = step_params(t, c)
    params.update(queue=t.task_queue, timeout=c.timeout_seconds, channel=channel,
                  payload=c.timeout_payload_json)
    return [signal_lock(c.signal_id), (sql, params)]


def send_signal(signal_id: str, data_json: str, channel: str,
                step: dict[str, Any] | None = None) -> list[Statement]:
    """Deliver a signal to every thread waiting for it, or keep it for the first later wait.

    With ``step``, the send is also recorded as that step, and happens only if the step is new.
    """
    if step is None:
        head = "st AS (SELECT 1)"
    else:
        head = f"st AS ({STEP})"
    sql = f"""WITH {head},
woken AS (
    UPDATE {{s}}.steps SET status = 'done', result = %(data)s, completed_at = {{s}}.clock()
     WHERE kind IN ('wait', 'exec_hook') AND status = 'pending' AND name = %(sid)s
       AND EXISTS (SELECT 1 FROM st)
       AND EXISTS (SELECT 1 FROM {{s}}.workflows w
                    WHERE w.run_id = {{s}}.steps.run_id
                      AND {thread_may_run("w", "{s}.steps.dim")})
    RETURNING run_id, dim),
kept AS (
    INSERT INTO {{s}}.signals (signal_id, data)
    SELECT %(sid)s, %(data)s FROM st WHERE NOT EXISTS (SELECT 1 FROM woken)
    RETURNING id),
{WAKE}
SELECT (SELECT count(*) FROM woken) AS delivered, (SELECT count(*) FROM kept) AS kept,
       (SELECT count(*) FROM ({NOTIFY_WOKEN}) n) AS notified"""
    params: dict[str, Any] = dict(step or {})
    params.update(sid=signal_id, data=data_json, channel=channel)
    return [signal_lock(signal_id), (sql, params)]


def start_workflow(params: dict[str, Any], channel: str, *, fresh: bool = False) -> Statement:
    """Start a workflow run as the id's policies allow; returns one row: the ``action``
    decided (see ``fragments.start_ctes``), ``started`` (the new run id, or NULL) and
    ``old_run_id`` (the run that held the id). With ``fresh``, only a new id starts (the
    short statement; ``started`` is NULL when the id exists)."""
    sql = f"""WITH {start_ctes(fresh=fresh)}
SELECT d.action, d.old_run_id, (SELECT run_id FROM up) AS started,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue)
                              FROM first_pass) n) AS notified
  FROM decide d"""
    return sql, {"trace": None, **params, "channel": channel}


def signal(t: Thread, c: durable.SendSignal, channel: str) -> list[Statement]:
    """Send a signal from a workflow, recorded as its step (once across replays)."""
    return send_signal(c.signal_id, c.data_json, channel, step=step_params(t, c, "done"))


def child_start_params(c: durable.ChildStart) -> dict[str, Any]:
    """The parameters of the ``START`` fragment for child ``c`` (its parent's are set by
    ``child``)."""
    return start_params(workflow_id=c.workflow_id, run_id=c.run_id, name=c.workflow_name,
                        task_queue=c.task_queue, args_json=c.args_json,
                        config_json=c.config_json, entity_type=c.entity_type,
                        search_json=c.search_json, signal_in=c.signal_in,
                        expire=c.expire_seconds, trace_json=c.trace_json,
                        timeout=c.timeout_seconds, timeout_payload_json=c.timeout_payload_json)


def child(t: Thread, c: durable.ChildStart, channel: str) -> list[Statement]:
    """Start a child workflow and record the step that waits for it (or holds its id)."""
    start = isinstance(c, durable.StartChild)
    guard = """NOT EXISTS (SELECT 1 FROM {s}.steps
                  WHERE run_id = %(p_run_id)s AND dim = %(p_dim)s AND idx = %(p_idx)s)"""
    sql = f"""WITH {start_ctes(guard)},
st AS (
    INSERT INTO {{s}}.steps (run_id, dim, idx, kind, name, status, result, error, completed_at)
    SELECT %(p_run_id)s, %(p_dim)s, %(p_idx)s, %(kind)s, %(workflow_id)s,
           CASE WHEN NOT EXISTS (SELECT 1 FROM up) THEN 'failed'
                WHEN %(is_start)s THEN 'done' ELSE 'pending' END,
           CASE WHEN %(is_start)s AND EXISTS (SELECT 1 FROM up) THEN to_jsonb(%(workflow_id)s::text)
           END,
           CASE WHEN NOT EXISTS (SELECT 1 FROM up) THEN %(dup_error)s::jsonb END,
           CASE WHEN %(is_start)s OR NOT EXISTS (SELECT 1 FROM up) THEN {{s}}.clock() END
    ON CONFLICT DO NOTHING RETURNING status, result, error),
-- an exec_child refused at once (the id is live) settles now: wake the parent's thread, which
-- otherwise would wait for a child run that will never report to it
woken AS (SELECT %(p_run_id)s::text AS run_id, %(p_dim)s::text AS dim FROM st
           WHERE st.status = 'failed' AND NOT %(is_start)s),
{WAKE.strip()}
SELECT st.status, st.result, st.error,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM first_pass) n)
         AS notified,
       (SELECT count(*) FROM ({NOTIFY_WOKEN}) w) AS notified_woken
  FROM st"""
    params = child_start_params(c)
    params.update(p_run_id=t.run_id, p_dim=t.dim, p_idx=c.idx, kind=c.kind, is_start=start,
                  dup_error=c.duplicate_error_json, channel=channel)
    params.update(parent_id=t.workflow_id, parent_run_id=t.run_id,
                  priority=None)  # the parent's (start_ctes)
    if not start:  # only exec_child's step waits for the child's outcome
        params.update(parent_dim=t.dim, parent_idx=c.idx)
    return [(sql, params)]


def recorded(t: Thread, c: durable.Command, status: str, result_json: str | None,
             error_json: str | None = None) -> list[Statement]:
    """Record a step whose result the pass already knows."""
    return [(STEP, step_params(t, c, status, result_json, error_json))]


# The run a hook is started on: it takes hooks and was not started with signal_in = false.
_HOOK_TARGET = f"""target AS (
    SELECT run_id, priority FROM {{s}}.workflows w
     WHERE workflow_id = %(target_id)s AND {takes_hooks("w")}
       AND w.signal_in IS DISTINCT FROM false)"""
# The first pass of the hook thread CTE ``th`` started on ``target``, at the run's priority.
_HOOK_FIRST_PASS = """first_pass AS (
    INSERT INTO {s}.tasks (queue, kind, run_id, dim, priority)
    SELECT task_queue, 'w', th.run_id, dim, target.priority
      FROM th JOIN target ON target.run_id = th.run_id RETURNING queue)"""


def hook(t: Thread, c: durable.HookStart, channel: str) -> list[Statement]:
    """Start a hook thread on a workflow; with ``exec_hook`` also record the step awaiting it."""
    is_exec = not isinstance(c, durable.StartHook)
    sql = f"""WITH {_HOOK_TARGET},
th AS (
    INSERT INTO {{s}}.threads (run_id, dim, name, task_queue, args, status, parent_run_id,
                              parent_dim, parent_idx)
    SELECT target.run_id, %(hook_dim)s, %(hook_name)s, %(hook_queue)s, %(hook_args)s,
           'running', %(p_run_id)s, %(p_dim)s, %(p_idx)s
      FROM target
     WHERE NOT EXISTS (SELECT 1 FROM {{s}}.steps
                        WHERE run_id = %(run_id)s AND dim = %(dim)s AND idx = %(idx)s)
    ON CONFLICT DO NOTHING RETURNING run_id, dim, task_queue),
{_HOOK_FIRST_PASS},
st AS (
    INSERT INTO {{s}}.steps (run_id, dim, idx, kind, name, status, result, error, completed_at)
    SELECT %(run_id)s, %(dim)s, %(idx)s, %(kind)s, %(name)s,
           CASE WHEN NOT EXISTS (SELECT 1 FROM th) THEN 'failed'
                WHEN %(is_exec)s THEN 'pending' ELSE 'done' END,
           CASE WHEN EXISTS (SELECT 1 FROM th) AND NOT %(is_exec)s
                THEN to_jsonb(%(hook_dim)s::text) END,
           CASE WHEN NOT EXISTS (SELECT 1 FROM th) THEN %(closed_error)s::jsonb END,
           CASE WHEN %(is_exec)s AND EXISTS (SELECT 1 FROM th) THEN NULL ELSE {{s}}.clock() END
    ON CONFLICT DO NOTHING RETURNING status, result, error)
SELECT st.status, st.result, st.error,
       (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue) FROM first_pass) n)
         AS notified
  FROM st"""
    params = step_params(t, c)
    params.update(target_id=c.target_workflow_id, hook_dim=c.thread_path,
                  hook_name=c.workflow_name, hook_queue=c.task_queue, hook_args=c.args_json)
    params.update(is_exec=is_exec, closed_error=c.closed_error_json, channel=channel,
                  p_run_id=t.run_id if is_exec else None, p_dim=t.dim if is_exec else None,
                  p_idx=c.idx if is_exec else None)
    return [(sql, params)]


def client_hook(params: dict[str, Any], channel: str) -> Statement:
    """Start a hook thread from outside any workflow; returns a row when it started."""
    sql = f"""WITH {_HOOK_TARGET},
th AS (
    INSERT INTO {{s}}.threads (run_id, dim, name, task_queue, args, status)
    SELECT target.run_id, %(hook_dim)s, %(hook_name)s, %(hook_queue)s, %(hook_args)s, 'running'
      FROM target RETURNING run_id, dim, task_queue),
{_HOOK_FIRST_PASS}
SELECT th.dim, (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'q:' || queue)
                                      FROM first_pass) n) AS notified
  FROM th"""
    return sql, {**params, "channel": channel}


def emit(t: Thread, c: durable.Emit, channel: str) -> list[Statement]:
    """Publish events to topics (stored, and announced by NOTIFY), once across replays."""
    sql = f"""WITH st AS ({STEP}),
ev AS (
    INSERT INTO {{s}}.events (topic, message, run_id)
    SELECT e.key, e.value, %(run_id)s FROM st, jsonb_each(%(events)s::jsonb) e
    RETURNING topic)
SELECT (SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'e:' || topic)
                              FROM (SELECT DISTINCT topic FROM ev) d) n) AS notified"""
    params = step_params(t, c, "done", "true")
    params.update(events=c.events_json, channel=channel)
    return [(sql, params)]


_FINISH_RUN_CTES = f"""fin AS (
    UPDATE {{s}}.workflows SET status = %(status)s, result = %(result)s, error = %(error)s,
           completed_at = {{s}}.clock(), updated_at = {{s}}.clock(), version = version + 1,
           expire_at = {{s}}.clock() + expire_seconds * interval '1 second'
     WHERE run_id = %(run_id)s AND status = 'running'
    RETURNING workflow_id, run_id, parent_run_id, parent_dim, parent_idx, status, result,
              error, signal_in, version, task_queue),
gone AS (DELETE FROM {{s}}.tasks t USING fin
           WHERE t.run_id = %(run_id)s AND (t.dim = '' OR fin.signal_in IS NOT TRUE
                                            OR fin.status <> 'completed')),
{SETTLE_PARENT}{WAKE.strip()}"""
_FINISH_RUN_COLS = ended_runs_report("finished")

_FINISH_HOOK_CTES = f"""fin AS (
    UPDATE {{s}}.threads SET status = %(status)s, result = %(result)s, error = %(error)s,
           completed_at = {{s}}.clock(), version = version + 1
     WHERE run_id = %(run_id)s AND dim = %(dim)s AND status = 'running'
    RETURNING run_id, parent_run_id, parent_dim, parent_idx, status, result, error, version),
gone AS (DELETE FROM {{s}}.tasks WHERE run_id = %(run_id)s AND dim = %(dim)s
            AND EXISTS (SELECT 1 FROM fin)),
woken AS (
    UPDATE {{s}}.steps s
       SET status = CASE WHEN fin.status = 'completed' THEN 'done' ELSE 'failed' END,
           result = fin.result, error = fin.error, completed_at = {{s}}.clock()
      FROM fin
     WHERE s.run_id = coalesce(fin.parent_run_id, fin.run_id) AND s.dim = fin.parent_dim
       AND s.idx = fin.parent_idx AND s.status = 'pending'
    RETURNING s.run_id, s.dim),
{WAKE.strip()}"""
_FINISH_HOOK_COLS = f"""(SELECT count(*) FROM fin) AS finished,
       (SELECT count(*) FROM ({NOTIFY_WOKEN}) n) AS notified"""


def finish_parts(run_id: str, dim: str, status: str, result_json: str | None,
                 error_json: str | None, channel: str) -> tuple[str, str, dict[str, Any]]:
    """The CTEs and result columns that end a thread (completed or failed): the main thread
    ends its run, a hook only itself."""
    params = {"status": status, "result": result_json, "error": error_json, "run_id": run_id,
              "dim": dim, "channel": channel}
    if dim == "":
        return _FINISH_RUN_CTES, _FINISH_RUN_COLS, params
    return _FINISH_HOOK_CTES, _FINISH_HOOK_COLS, params


def finish_thread(run_id: str, dim: str, status: str, result_json: str | None,
                  error_json: str | None, channel: str) -> Statement:
    """End a thread, as one statement (see ``finish_parts``)."""
    ctes, cols, params = finish_parts(run_id, dim, status, result_json, error_json, channel)
    return f"WITH {ctes}\nSELECT {cols}", params
