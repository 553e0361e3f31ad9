"""Flow control on queues: their limits, and the claim of work from queues that have any.

A queue's limits are one row of ``queue_limits`` (no row: no limits). Work of a limited queue
that takes a slot — a workflow's first pass until the run is admitted (task ``gate``; the run
waits with status ``pending``), and every activity attempt — is claimed only by
``claim_limited``: one transaction that first locks the queues' limit rows (so the claims of
one limited queue, from every worker, happen one after the other, each seeing the slots the
previous one took), then counts the slots held and the starts of the rate period and leases
what fits, highest ``priority`` first, FIFO within a priority. Work of a limited queue that
takes no slot (later passes of admitted runs, timers) is claimed by the same statement, never
held back by waiting work. Queues without limits never reach this module: the ordinary claim
(``memflow.store.tasks``) skips limited queues and only names them.

Slots held: running workflows of a workflow queue, leased (live) activity attempts of an
activity queue; per ``concurrency_key`` likewise. Rate: a sliding-window log of starts
(``queue_starts``), pruned by the claim itself. A slot freed by a finishing run or a settled
activity NOTIFYs the queue (``fragments.notify_freed``); a queue out of rate tokens reports
when the next one frees, and the consumer sleeps exactly until then.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from memflow.store.scope import Part

_LOCK = """SELECT queue FROM {s}.queue_limits WHERE queue = ANY(%(limited)s)
 ORDER BY queue FOR UPDATE"""

# Within the window of the rate period, relative to the engine clock.
_IN_WINDOW = "r.at > {s}.clock() - lim.rate_seconds * interval '1 second'"

_CLAIM_LIMITED = f"""WITH lim AS MATERIALIZED (
    SELECT queue, concurrency, per_key_concurrency AS per_key, rate_count, rate_seconds
      FROM {{s}}.queue_limits WHERE queue = ANY(%(limited)s)),
held AS MATERIALIZED (
    SELECT lim.queue,
           CASE WHEN lim.concurrency IS NULL THEN 0 ELSE
               (SELECT count(*) FROM {{s}}.workflows w
                 WHERE w.status = 'running' AND w.task_queue = lim.queue)
             + (SELECT count(*) FROM {{s}}.tasks a
                 WHERE a.queue = lim.queue AND a.kind = 'a' AND a.lease_owner IS NOT NULL
                   AND a.visible_at > {{s}}.clock()) END AS n,
           CASE WHEN lim.rate_count IS NULL THEN 0 ELSE
               (SELECT count(*) FROM {{s}}.queue_starts r
                 WHERE r.queue = lim.queue AND {_IN_WINDOW}) END AS used,
           CASE WHEN lim.rate_count IS NOT NULL THEN
               (SELECT min(r.at) FROM {{s}}.queue_starts r
                 WHERE r.queue = lim.queue AND {_IN_WINDOW}) END AS oldest
      FROM lim),
keys_held AS MATERIALIZED (
    SELECT k.queue, k.ckey, count(*) AS n FROM (
        SELECT w.task_queue AS queue, w.concurrency_key AS ckey
          FROM lim JOIN {{s}}.workflows w ON w.task_queue = lim.queue
         WHERE lim.per_key IS NOT NULL AND w.status = 'running'
           AND w.concurrency_key IS NOT NULL
        UNION ALL
        SELECT a.queue, a.ckey
          FROM lim JOIN {{s}}.tasks a ON a.queue = lim.queue
         WHERE lim.per_key IS NOT NULL AND a.kind = 'a' AND a.ckey IS NOT NULL
           AND a.lease_owner IS NOT NULL AND a.visible_at > {{s}}.clock()) k
     GROUP BY k.queue, k.ckey),
free AS (
    SELECT id, queue, priority, visible_at, false AS gate, false AS needs FROM {{s}}.tasks
     WHERE queue = ANY(%(limited)s) AND visible_at <= {{s}}.clock() AND kind <> 'a' AND NOT gate
     ORDER BY priority DESC, visible_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED),
gated AS (
    SELECT t.id, t.queue, t.priority, t.visible_at, t.gate, t.ckey FROM {{s}}.tasks t
     WHERE t.queue = ANY(%(limited)s) AND t.visible_at <= {{s}}.clock()
       AND (t.kind = 'a' OR t.gate)
       AND NOT EXISTS (SELECT 1 FROM keys_held k JOIN lim ON lim.queue = k.queue
                        WHERE k.queue = t.queue AND k.ckey = t.ckey AND k.n >= lim.per_key)
     ORDER BY t.priority DESC, t.visible_at LIMIT %(scan)s FOR UPDATE SKIP LOCKED),
keyed AS (
    SELECT g.*, lim.per_key, coalesce(k.n, 0) AS key_held,
           row_number() OVER (PARTITION BY g.queue, g.ckey
                              ORDER BY g.priority DESC, g.visible_at, g.id) AS krank
      FROM gated g LEFT JOIN lim ON lim.queue = g.queue
      LEFT JOIN keys_held k ON k.queue = g.queue AND k.ckey = g.ckey),
picked AS (
    SELECT p.*, row_number() OVER (PARTITION BY p.queue
                                   ORDER BY p.priority DESC, p.visible_at, p.id) AS qrank
      FROM keyed p
     WHERE p.ckey IS NULL OR p.per_key IS NULL OR p.key_held + p.krank <= p.per_key),
chosen AS (
    SELECT x.id, x.gate, x.needs, x.queue FROM (
        SELECT id, gate, needs, queue, priority, visible_at FROM free
        UNION ALL
        SELECT p.id, p.gate, true, p.queue, p.priority, p.visible_at
          FROM picked p LEFT JOIN lim ON lim.queue = p.queue
          LEFT JOIN held h ON h.queue = p.queue
         WHERE (lim.concurrency IS NULL OR p.qrank <= lim.concurrency - h.n)
           AND (lim.rate_count IS NULL OR p.qrank <= lim.rate_count - h.used)) x
     ORDER BY x.priority DESC, x.visible_at, x.id LIMIT %(limit)s),
c AS (
    UPDATE {{s}}.tasks t
       SET lease_owner = %(owner)s, attempts = t.attempts + 1, gate = false,
           visible_at = {{s}}.clock() + %(lease)s::float8 * interval '1 second'
      FROM chosen WHERE t.id = chosen.id
    RETURNING t.id, t.queue, t.kind, t.run_id, t.dim, t.idx, t.payload, t.attempts, t.wake,
              t.failures, chosen.gate, chosen.needs),
adm AS (
    UPDATE {{s}}.workflows w SET status = 'running', updated_at = {{s}}.clock()
      FROM c WHERE c.gate AND w.run_id = c.run_id AND w.status = 'pending'),
logged AS (
    INSERT INTO {{s}}.queue_starts (queue, at)
    SELECT c.queue, {{s}}.clock() FROM c JOIN lim ON lim.queue = c.queue
     WHERE c.needs AND lim.rate_count IS NOT NULL
    RETURNING queue),
pruned AS (
    DELETE FROM {{s}}.queue_starts r USING lim
     WHERE r.queue = lim.queue AND lim.rate_count IS NOT NULL AND NOT ({_IN_WINDOW}))
SELECT c.id, c.queue, c.kind, c.run_id, c.dim, c.idx, c.payload, c.attempts, c.wake,
       {{s}}.clock() AS now, c.failures, NULL::float8 AS token_in
  FROM c
UNION ALL
SELECT NULL, h.queue, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       extract(epoch FROM coalesce(h.oldest, {{s}}.clock())
                          + lim.rate_seconds * interval '1 second' - {{s}}.clock())::float8
  FROM held h JOIN lim ON lim.queue = h.queue
 WHERE lim.rate_count IS NOT NULL
   AND h.used + (SELECT count(*) FROM logged WHERE logged.queue = h.queue) >= lim.rate_count"""


async def claim_limited(part: Part, limited: list[str], owner: str, lease: float,
                        limit: int) -> list[dict[str, Any]]:
    """Claim up to ``limit`` tasks of the limited queues ``limited`` within their limits (see
    the module's docstring): rows of claimed tasks, and for each queue out of rate tokens a
    row without ``id`` whose ``token_in`` says in how many seconds the next one frees."""
    params = {"limited": sorted(limited), "owner": owner, "lease": lease, "limit": limit,
              "scan": 4 * limit + 20}
    lock, claim = part.sql(_LOCK), part.sql(_CLAIM_LIMITED)

    async def go(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(lock, params)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(claim, params)
        return await cur.fetchall()

    return await part.store.run(go)


_CONFIGURE = """WITH up AS (
    INSERT INTO {s}.queue_limits AS l (queue, concurrency, per_key_concurrency, rate_count,
                                       rate_seconds, updated_at)
    SELECT %(queue)s, %(concurrency)s, %(per_key)s, %(rate_count)s, %(rate_seconds)s,
           {s}.clock()
     WHERE %(any)s
    ON CONFLICT (queue) DO UPDATE SET
        concurrency = EXCLUDED.concurrency, per_key_concurrency = EXCLUDED.per_key_concurrency,
        rate_count = EXCLUDED.rate_count, rate_seconds = EXCLUDED.rate_seconds,
        updated_at = EXCLUDED.updated_at
    RETURNING queue),
gone AS (DELETE FROM {s}.queue_limits WHERE queue = %(queue)s AND NOT %(any)s),
log AS (DELETE FROM {s}.queue_starts WHERE queue = %(queue)s AND %(rate_count)s::int IS NULL)
SELECT pg_notify(%(channel)s, 'q:' || %(queue)s::text) AS notified"""

# Depth: work due and not running (waiting for a worker, or for a slot or a token); running:
# running workflows of the queue and live activity attempts on it; pending: runs waiting to be
# admitted (limits, debounce).
_DESCRIBE = """SELECT q.queue,
       (SELECT count(*) FROM {s}.tasks t
         WHERE t.queue = q.queue AND t.visible_at <= {s}.clock()) AS depth,
       (SELECT count(*) FROM {s}.workflows w
         WHERE w.status = 'running' AND w.task_queue = q.queue)
     + (SELECT count(*) FROM {s}.tasks a
         WHERE a.queue = q.queue AND a.kind = 'a' AND a.lease_owner IS NOT NULL
           AND a.visible_at > {s}.clock()) AS running,
       (SELECT count(*) FROM {s}.workflows w
         WHERE w.status = 'pending' AND w.task_queue = q.queue) AS pending,
       (SELECT extract(epoch FROM {s}.clock() - min(t.visible_at))::float8 FROM {s}.tasks t
         WHERE t.queue = q.queue AND t.visible_at <= {s}.clock()) AS oldest_wait_s,
       l.concurrency, l.per_key_concurrency, l.rate_count, l.rate_seconds
  FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS q(queue, n)
  LEFT JOIN {s}.queue_limits l ON l.queue = q.queue
 ORDER BY q.n"""

_QUEUES = """SELECT queue FROM {s}.queue_limits
UNION SELECT queue FROM {s}.tasks
UNION SELECT task_queue FROM {s}.workflows WHERE status IN ('running', 'pending')
ORDER BY 1"""


class FlowQueries(Part):
    """Queue limits of a namespace: set, read, and the figures of each queue."""

    async def configure(self, queue: str, concurrency: int | None, per_key: int | None,
                        rate_count: int | None, rate_seconds: float | None) -> None:
        """Set the limits of ``queue`` to exactly these (all None: no limits), and NOTIFY the
        queue so that waiting work is claimed at once under the new limits."""
        await self.store.fetch(self.sql(_CONFIGURE), {
            "queue": queue, "concurrency": concurrency, "per_key": per_key,
            "rate_count": rate_count, "rate_seconds": rate_seconds,
            "any": any(v is not None for v in (concurrency, per_key, rate_count)),
            "channel": self.namespace})

    async def describe(self, queues: list[str]) -> list[dict[str, Any]]:
        """One row per queue (in order): depth, running, pending, oldest_wait_s, limits."""
        return list(await self.store.fetch(self.sql(_DESCRIBE), {"queues": queues}))

    async def queues(self) -> list[str]:
        """Every queue with limits, tasks, or live runs."""
        return [r["queue"] for r in await self.store.fetch(self.sql(_QUEUES))]
