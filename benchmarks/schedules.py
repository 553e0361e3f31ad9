"""``schedules``: how late do scheduled runs start? N schedules of ``every="1 second"``.

All N schedules tick on the same whole seconds for ``--seconds`` seconds (default 60; their
``start_at``/``end_at`` bound the ticks exactly). One worker process runs the scheduler and the
workflows. Per tick, lateness is measured from its scheduled time to

- ``p50_ms``/``p99_ms``: the workflow function running (the wall time its first pass records);
- ``claim_p50_ms``/``claim_p99_ms``: the transaction that claimed the tick and started the run.

It also checks that every expected tick started exactly once (``missing``, ``duplicates``).
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.common import base_line, latency_figures, session, sql

SCHEDULES_N = 100
SECONDS = 60.0


async def scheduled_stamp() -> float:
    """The scheduled workflow: the wall time its first pass ran (no durable step)."""
    return time.time()


async def run(opts: Any) -> dict[str, Any]:
    """Run the workload; one JSON line of figures."""
    n = int(opts.n or SCHEDULES_N)
    seconds = max(1, math.ceil(opts.seconds or SECONDS))
    async with session("schedules", [scheduled_stamp], []) as s:
        begin = datetime.fromtimestamp(math.ceil(time.time()) + 2, UTC)
        end = begin + timedelta(seconds=seconds - 1)
        for i in range(n):
            await s.client.schedule.create(
                f"s{i:04d}", workflow_name=scheduled_stamp, task_queue=s.task_queue,
                every="1 second", overlap="allow_all", start_at=begin, end_at=end)
        expected = n * seconds
        deadline = time.monotonic() + seconds + 60
        while time.monotonic() < deadline:
            done = await _completed(s.namespace)
            if done >= expected and time.time() > end.timestamp() + 1:
                break
            await asyncio.sleep(0.5)
        rows = await sql(f'''SELECT r.workflow_id, extract(epoch FROM r.scheduled_at)::float8,
       extract(epoch FROM w.created_at)::float8, w.result
  FROM "{s.namespace}".schedule_runs r JOIN "{s.namespace}".workflows w USING (workflow_id)
 WHERE w.status = 'completed' ''')
        descs = await s.client.schedule.list()
    late = [float(r[3]) - r[1] for r in rows]
    claim = [r[2] - r[1] for r in rows]
    ids = [r[0] for r in rows]
    out = base_line("schedules", n)
    out.update(latency_figures(late), **latency_figures(claim, "claim_"),
               max_ms=round(max(late, default=math.nan) * 1000, 1), ticks=len(rows),
               expected_ticks=expected, missing=expected - len(set(ids)),
               duplicates=len(ids) - len(set(ids)),
               skipped=sum(d.skipped for d in descs), missed=sum(d.missed for d in descs),
               seconds=seconds)
    return out


async def _completed(namespace: str) -> int:
    rows = await sql(f'SELECT count(*) FROM "{namespace}".workflows WHERE status = \'completed\'')
    return int(rows[0][0])
