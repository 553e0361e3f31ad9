"""Interruption (termination): the hard stop of a live run and, optionally, of its live
descendants, from a workflow's ``interrupt`` command, a client's ``handle.terminate`` or a
schedule's ``terminate_other``."""

from __future__ import annotations

from memflow import commands as durable
from memflow.store.commands import STEP, Statement, Thread, step_params
from memflow.store.fragments import (
    SETTLE_PARENT,
    WAKE,
    ended_runs_report,
    of_chain,
)


def interrupt_sql(step: bool) -> str:
    """Interrupt a live run and (with ``descend``) its live descendants, settling any parent
    waiting for them; with ``step``, only when the interrupting step is new."""
    head = f"st AS ({STEP})," if step else ""
    guard = "AND EXISTS (SELECT 1 FROM st)" if step else ""
    return f"""WITH RECURSIVE {head} tree AS (
    SELECT run_id, workflow_id, coalesce(config->>'$first_run_id', run_id) AS chain
      FROM {{s}}.workflows w
     WHERE workflow_id = %(target_id)s AND status IN ('running', 'pending') {guard}
       AND {of_chain("w", "%(target_run)s::text")}
    UNION ALL
    SELECT c.run_id, c.workflow_id, coalesce(c.config->>'$first_run_id', c.run_id)
      FROM {{s}}.workflows c JOIN tree ON c.parent_run_id = tree.run_id
     WHERE %(descend)s AND c.status IN ('running', 'pending')),
-- keyed by id and chain, not run: a continue-as-new that commits while this waits for the
-- row is re-read here as the chain's new run, and interrupted
fin AS (
    UPDATE {{s}}.workflows w SET status = 'interrupted', result = NULL, error = %(ierror)s,
           completed_at = {{s}}.clock(), updated_at = {{s}}.clock(),
           expire_seconds = coalesce(%(expire)s::float8, expire_seconds),
           expire_at = {{s}}.clock()
                       + coalesce(%(expire)s::float8, expire_seconds) * interval '1 second'
     WHERE w.status IN ('running', 'pending')
       AND (w.workflow_id, coalesce(w.config->>'$first_run_id', w.run_id))
           IN (SELECT workflow_id, chain FROM tree)
    RETURNING workflow_id, run_id, parent_run_id, parent_dim, parent_idx, status, result, error,
              signal_in, task_queue),
gone AS (DELETE FROM {{s}}.tasks WHERE run_id IN (SELECT run_id FROM fin)),
{SETTLE_PARENT}{WAKE.strip()}
SELECT {ended_runs_report("stopped")}"""


def interrupt(t: Thread, c: durable.Interrupt, channel: str) -> list[Statement]:
    """Interrupt a workflow from a workflow, once across replays."""
    params = step_params(t, c, "done")
    params.update(target_id=c.workflow_id, descend=c.descend, ierror=c.error_json,
                  expire=c.expire_seconds, target_run=None, channel=channel)
    return [(interrupt_sql(step=True), params)]
