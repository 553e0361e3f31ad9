"""Shared plumbing of the workloads: the database, fresh namespaces, sessions, statistics."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from memflow import Client, Connection, MemFlow, Worker

DRIVER = "same-process"
# Worker options every session adds (the harness's --metrics sets metrics_port here).
WORKER_OPTIONS: dict[str, Any] = {}


async def database_url() -> str:
    """The DSN the workloads run against: ``MEMFLOW_DATABASE_URL``, else the embedded Postgres.

    The API itself is always given ``connection=None`` so it resolves the same database; this
    DSN is only for the raw SQL of the harness (statistics, floor, clean-up).
    """
    return (await Connection.connect(None)).dsn


def fresh_namespace(label: str) -> str:
    """A new namespace (schema) name for one workload run, e.g. ``bench_w1_3fa85f64``."""
    return f"bench_{label}_{uuid.uuid4().hex[:8]}"


async def sql(query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on a short-lived connection of its own; returns its rows."""
    async with await psycopg.AsyncConnection.connect(await database_url(),
                                                     autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def drop_schema(namespace: str) -> None:
    """Drop a workload's schema and everything in it."""
    await sql(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')


async def count_pending_waits(namespace: str) -> int:
    """How many ``wait_for`` steps are committed and still waiting for their signal.

    Reads the engine's ``steps`` table (the public API has no "is it waiting?" call yet).
    """
    rows = await sql(f'SELECT count(*) FROM "{namespace}".steps '
                     "WHERE kind = 'wait' AND status = 'pending'")
    return int(rows[0][0])


async def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> None:
    """Poll ``await check()`` until it is truthy; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g}s")
        await asyncio.sleep(interval)


@dataclass
class Session:
    """One workload's worker and client, in a fresh namespace."""

    namespace: str
    task_queue: str
    worker: Worker
    client: Client

    async def start(self, workflow: Callable[..., Any], args: list[Any],
                    workflow_id: str | None = None) -> Any:
        """Start ``workflow`` on this session's queue; returns its handle."""
        return await self.client.workflow.start(args=args, task_queue=self.task_queue,
                                                workflow_name=workflow.__name__,
                                                workflow_id=workflow_id)

    async def run(self, workflow: Callable[..., Any], args: list[Any]) -> Any:
        """Start ``workflow`` and wait for its result."""
        return await (await self.start(workflow, args)).result()


@asynccontextmanager
async def session(label: str, workflows: list[Callable[..., Any]], activities: list[Any],
                  options: dict[str, Any] | None = None,
                  namespace: str | None = None) -> AsyncIterator[Session]:
    """A worker (serving the workflows and, on ``<queue>-activity``, the activities) and a
    client in a fresh namespace; everything is shut down and the schema dropped afterwards."""
    ns = namespace or fresh_namespace(label)
    queue = f"bench-{label}"
    try:
        worker = await Worker.create(connection=None, task_queue=queue, workflow=workflows,
                                     namespace=ns, activities=activities,
                                     options={**WORKER_OPTIONS, **(options or {})} or None)
        client = Client(connection=None, namespace=ns)
        yield Session(ns, queue, worker, client)
    finally:
        await MemFlow.shutdown()
        await drop_schema(ns)


async def three_step_batch(s: Session, workflow: Callable[..., Any], n: int,
                           label: str) -> tuple[float, list[tuple[float, float, str]]]:
    """W1's body: ``n`` runs of ``workflow`` (``flows.three_steps``) started at once and
    awaited. Returns the seconds from the first start to the last result, and per run its
    start-to-result seconds, its end (``perf_counter``) and its run id."""
    async def one(i: int) -> tuple[float, float, str]:
        began = time.perf_counter()
        handle = await s.start(workflow, [f"w{i}"])
        result = await handle.result()
        ended = time.perf_counter()
        if result != f"c:b:a:w{i}":
            raise AssertionError(f"{label} workflow {i} returned {result!r}")
        return ended - began, ended, handle.run_id

    t0 = time.perf_counter()
    done = await asyncio.gather(*(one(i) for i in range(n)))
    return max(end for _, end, _ in done) - t0, done


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation between ranks."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded to 0.1 ms."""
    return round(seconds * 1000.0, 1)


def latency_figures(seconds: Sequence[float], prefix: str = "") -> dict[str, float]:
    """``p50_ms`` and ``p99_ms`` (with an optional key prefix) of latencies in seconds."""
    return {f"{prefix}p50_ms": ms(percentile(seconds, 50)),
            f"{prefix}p99_ms": ms(percentile(seconds, 99))}


def base_line(workload: str, n: int | None = None) -> dict[str, Any]:
    """The fields every JSON line starts with."""
    out: dict[str, Any] = {"workload": workload}
    if n is not None:
        out["n"] = n
    out["driver"] = DRIVER
    return out


