"""Dashboard render times on a big namespace: ``python -m benchmarks dashboard [--n 100000]``.

Seeds N runs (default 100,000: mixed statuses, names, queues, spread over 7 days) with direct
SQL, plus one run with N/10 steps (at most 10,000; four threads, parallel branches), then serves
the dashboard with uvicorn on a loopback port and times full HTTP requests (the median of 5,
after one warm-up): the list (first page, filtered, a deep keyset page), the 10,000-step run
page, its next page of steps, and the queues page.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urlencode

from benchmarks.common import base_line, database_url, drop_schema, fresh_namespace, sql

SEED_RUNS = """INSERT INTO "{ns}".workflows (workflow_id, run_id, name, task_queue, status,
        args, result, created_at, completed_at)
SELECT 'wf-' || lpad(i::text, 7, '0'), 'run-' || i,
       (ARRAY['order', 'invoice', 'report'])[1 + i %% 3],
       (ARRAY['orders', 'billing', 'reports', 'mail'])[1 + i %% 4],
       CASE WHEN i %% 50 = 0 THEN 'failed' WHEN i %% 7 = 0 THEN 'running' ELSE 'completed' END,
       jsonb_build_array(i), CASE WHEN i %% 7 <> 0 THEN to_jsonb(i) END,
       now() - (%(n)s - i) * (interval '7 days' / %(n)s),
       CASE WHEN i %% 7 <> 0 THEN now() - (%(n)s - i) * (interval '7 days' / %(n)s)
                                 + interval '2 seconds' END
  FROM generate_series(1, %(n)s) i"""

SEED_STEPS = """INSERT INTO "{ns}".steps (run_id, dim, idx, kind, name, status, result,
        created_at, completed_at)
SELECT 'run-big', CASE WHEN i %% 4 = 0 THEN '' ELSE '.' || (i %% 4) END, i / 4, 'activity',
       'step_' || (i %% 13), 'done', to_jsonb('result ' || i),
       now() - interval '1 hour' + (i / 8) * interval '300 milliseconds',
       now() - interval '1 hour' + (i / 8) * interval '300 milliseconds' + interval '250 ms'
  FROM generate_series(0, %(steps)s - 1) i"""


def _timed(url: str, repeat: int = 5) -> tuple[float, int]:
    """The median seconds of ``repeat`` GETs of ``url`` (after a warm-up), and the body size."""
    size = 0
    samples = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{url}: HTTP {resp.status}")
        if attempt:
            samples.append(time.perf_counter() - started)
        size = len(body)
    return statistics.median(samples), size


async def _seed(ns: str, n: int, steps: int) -> None:
    from memflow.store import NamespaceStore, Store

    await NamespaceStore.open(await Store.get(await database_url()), ns)
    await sql(SEED_RUNS.format(ns=ns), {"n": n})
    await sql(f"""UPDATE "{ns}".workflows SET workflow_id = 'big-run', run_id = 'run-big',
                  status = 'completed' WHERE workflow_id = 'wf-0000001'""")
    await sql(f"""INSERT INTO "{ns}".threads (run_id, dim, name, task_queue, args, status)
                  SELECT 'run-big', '.' || d, 'hook_' || d, 'orders', '[]', 'completed'
                    FROM generate_series(1, 3) d""")
    await sql(SEED_STEPS.format(ns=ns), {"steps": steps})
    await sql(f'ANALYZE "{ns}".workflows')
    await sql(f'ANALYZE "{ns}".steps')


def _measure(base: str, ns: str, deep: tuple[str, str]) -> dict[str, float]:
    def url(path: str, **params: str) -> str:
        return f"{base}{path}?{urlencode({'ns': ns, **params})}"

    pages = {
        "list": url("/"),
        "list_status_failed": url("/", status="failed"),
        "list_name_queue": url("/", name="report", queue="mail"),
        "list_prefix": url("/", prefix="wf-00123"),
        "list_last_24h": url("/", within="24h", status="running"),
        "list_deep_page": url("/", after_at=deep[0], after_id=deep[1]),
        "run_10k_steps": url("/run", id="big-run"),
        "run_10k_steps_next_page": url("/run/steps", id="big-run", after="120:.1"),
        "queues": url("/queues"),
    }
    out: dict[str, float] = {}
    for label, target in pages.items():
        seconds, size = _timed(target)
        out[f"{label}_ms"] = round(seconds * 1000, 1)
        out[f"{label}_kb"] = round(size / 1024, 1)
    return out


async def run(opts: Any) -> dict[str, Any]:
    """Seed, serve, time; returns the JSON line."""
    import uvicorn

    from memflow.dashboard import DashboardSettings, create_app

    n = opts.n or 100_000
    steps = min(10_000, max(100, n // 10))
    ns = fresh_namespace("dash")
    line = base_line("dashboard", n)
    try:
        started = time.perf_counter()
        await _seed(ns, n, steps)
        line["seed_s"] = round(time.perf_counter() - started, 1)
        deep_id = f"wf-{max(2, n // 100):07d}"  # 99% of the way down the list
        (deep_at,), = await sql(f'SELECT created_at FROM "{ns}".workflows '
                                "WHERE workflow_id = %s", (deep_id,))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        settings = DashboardSettings(database_url=await database_url(), namespace=ns,
                                     port=port)
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1",
                                               port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            line["steps"] = steps
            line.update(await asyncio.to_thread(_measure, f"http://127.0.0.1:{port}", ns,
                                                (deep_at.isoformat(), deep_id)))
        finally:
            server.should_exit = True
            await asyncio.to_thread(thread.join, 15)
    finally:
        await drop_schema(ns)
    return line
