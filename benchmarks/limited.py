"""W1 under flow control: ``W1-limited`` (the workflow queue at ``concurrency=50``) and
``W1-rate`` (``rate_limit=(200, "1 second")``); ``--concurrency`` / ``--rate`` override them.

The same workflows and worker as W1, all started at once. The limit is configured before the
clock starts. Figures: W1's (``total_s``, ``workflows_per_s``, ``p50_ms``, ``p99_ms``) and

- ``W1-limited``: ``peak_running`` (most running workflows seen by sampling the queue every
  20 ms; never above the limit) and ``peak_admitted`` (most runs admitted and not finished at
  once, from their recorded first and last step times).
- ``W1-rate``: ``achieved_rate_per_s`` (admissions per second once the initial burst of
  ``count`` is spent: ``(n - count) / (last admission - count-th admission)``, the long-run
  rate, to compare with the limit) and ``max_in_window`` (the most admissions within any
  sliding period; never above ``count``). Admission times are the ones the rate limiter logs
  (copied by a trigger on ``queue_starts``). The worker's own ``concurrency`` (default 100,
  ``--worker-concurrency``) also bounds admissions: a machine that cannot finish ``count``
  workflows per period at that concurrency admits fewer.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from benchmarks.common import base_line, latency_figures, session, sql, three_step_batch
from benchmarks.flows import ACTIVITIES, WORKFLOWS, three_steps
from memflow import MemFlow

W1_LIMITED_N = 500
W1_RATE_N = 1000
CONCURRENCY = 50
RATE = (200, 1.0)


async def _run(label: str, n: int, limits: dict[str, Any],
               options: dict[str, Any] | None = None
               ) -> tuple[dict[str, Any], list[Any], list[datetime]]:
    """Run W1 with ``limits`` on its queue; returns the W1 figures, the admission and end
    times of every run, and the peak of sampled running workflows."""
    async with session(label.lower().replace("-", "_"), WORKFLOWS, ACTIVITIES,
                       options) as s:
        assert await s.run(three_steps, ["warm"]) == "c:b:a:warm"
        await s.client.queue.configure(s.task_queue, **limits)
        # every start the rate limiter logs, as it logs it (the claim's own clock)
        await sql(f'CREATE TABLE "{s.namespace}".bench_starts (at timestamptz)')
        await sql(f"""CREATE FUNCTION "{s.namespace}".bench_log() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "{s.namespace}".bench_starts VALUES (NEW.at);
RETURN NEW; END $$""")
        await sql(f'CREATE TRIGGER bench_log AFTER INSERT ON "{s.namespace}".queue_starts '
                  f'FOR EACH ROW EXECUTE FUNCTION "{s.namespace}".bench_log()')
        peak = 0
        stop = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, (await s.client.queue.describe(s.task_queue)).running)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.02)

        sampler = asyncio.create_task(sample())
        total, done = await three_step_batch(s, three_steps, n, label)
        stop.set()
        await sampler
        rows = await sql(f'SELECT run_id, min(created_at), max(completed_at) FROM '
                         f'"{s.namespace}".steps WHERE run_id = ANY(%s) GROUP BY run_id',
                         [[r for _, _, r in done]])
        logged = [r[0] for r in await sql(f'SELECT at FROM "{s.namespace}".bench_starts')]
        await MemFlow.shutdown()
    out = base_line(label, n)
    out.update(total_s=round(total, 3), workflows_per_s=round(n / total, 1),
               **latency_figures([lat for lat, _, _ in done]), peak_running=peak)
    return out, rows, logged


def _peak_admitted(rows: list[Any]) -> int:
    events = sorted([(r[1], 1) for r in rows] + [(r[2], -1) for r in rows])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def _rate_figures(times: list[datetime], count: int, seconds: float) -> dict[str, Any]:
    ts = sorted(t.timestamp() for t in times)
    most, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] <= t - seconds:
            j += 1
        most = max(most, i - j + 1)
    # past the initial burst of ``count``, one admission per freed token
    span = ts[-1] - ts[count - 1] if len(ts) > count else 0.0
    rate = (len(ts) - count) / span if span > 0 else float("nan")
    return {"achieved_rate_per_s": round(rate, 1), "max_in_window": most,
            "limit": f"{count}/{seconds:g}s"}


async def w1_limited(opts: Any) -> dict[str, Any]:
    """W1 with the workflow queue at ``concurrency`` (default 50)."""
    n = int(opts.n or W1_LIMITED_N)
    limit = int(getattr(opts, "concurrency", None) or CONCURRENCY)
    out, rows, _ = await _run("W1-limited", n, {"concurrency": limit})
    out.update(concurrency=limit, peak_admitted=_peak_admitted(rows))
    return out


async def w1_rate(opts: Any) -> dict[str, Any]:
    """W1 with the workflow queue at ``rate_limit=(count, "1 second")`` (default 200)."""
    n = int(opts.n or W1_RATE_N)
    count = int(getattr(opts, "rate", None) or RATE[0])
    options = {"concurrency": int(opts.worker_concurrency)} if getattr(
        opts, "worker_concurrency", None) else None
    out, _, logged = await _run("W1-rate", n, {"rate_limit": (count, RATE[1])}, options)
    out.update(_rate_figures(logged, count, RATE[1]))
    if options:
        out.update(worker_concurrency=options["concurrency"])
    return out
