"""``rss``: the worker's peak memory while N (default 10,000) workflows wait for signals.

The worker runs in a subprocess (``benchmarks.rss_worker``) so its memory is its own; the
driver starts the workflows, waits until every ``wait_for`` is committed, then reads the
worker's ``VmHWM`` (peak resident set) and ``VmRSS`` from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    base_line,
    count_pending_waits,
    database_url,
    drop_schema,
    fresh_namespace,
    wait_until,
)
from benchmarks.flows import wait_signal
from memflow import Client, MemFlow

RSS_N = 10_000
CHUNK = 500
ROOT = Path(__file__).resolve().parent.parent


def memory_mb(pid: int) -> dict[str, float]:
    """``VmHWM`` and ``VmRSS`` of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024.0
    return out


async def run(opts: Any) -> dict[str, Any]:
    """Start the worker process, park N workflows on ``wait_for``, report its peak RSS."""
    n = int(opts.n or RSS_N)
    ns = fresh_namespace("rss")
    queue = "bench-rss"
    env = dict(os.environ, MEMFLOW_DATABASE_URL=await database_url())
    cache = "" if opts.cache_size is None else str(opts.cache_size)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.rss_worker", ns, queue, cache,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the rss worker exited before it was ready")
        info = json.loads(line)
        idle = memory_mb(proc.pid)
        client = Client(connection=None, namespace=ns)
        t0 = time.perf_counter()
        for first in range(0, n, CHUNK):
            await asyncio.gather(*(
                client.workflow.start(args=[f"sig-{i}"], task_queue=queue,
                                      workflow_name=wait_signal.__name__)
                for i in range(first, min(n, first + CHUNK))))

        async def all_waiting() -> bool:
            return await count_pending_waits(ns) >= n
        await wait_until(all_waiting, timeout=120 + n * 0.05, interval=0.2)
        parked = time.perf_counter() - t0
        mem = memory_mb(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await MemFlow.shutdown()
        await drop_schema(ns)
    out = base_line("rss", n)
    out["driver"] = "separate-process worker"
    out.update(rss_mb=round(mem["VmHWM"], 1), rss_now_mb=round(mem["VmRSS"], 1),
               rss_idle_mb=round(idle["VmRSS"], 1), cache_size=info.get("cache_size"),
               all_waiting_s=round(parked, 3))
    return out
