"""The commit floor: how many minimal write transactions per second this Postgres sustains.

Each connection loops ``INSERT INTO scratch (v) VALUES (...)`` in autocommit mode (one small
INSERT + COMMIT per transaction), with the same driver and connection settings as the engine
(psycopg 3, async, autocommit). The scratch table lives in a fresh schema dropped afterwards.

The ``floor`` workload also measures the same transaction with a ``pg_notify`` in it, as most of
the engine's write transactions have: PostgreSQL serialises the commits of transactions that
NOTIFY (a database-wide lock is held through the commit), so they get no group commit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from benchmarks.common import base_line, database_url, drop_schema, fresh_namespace, sql

DEFAULT_SECONDS = 3.0


async def _writer(dsn: str, statement: str, stop_at: float, counts: list[int], slot: int,
                  warm_until: float) -> None:
    async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, application_name="memflow-bench-floor") as conn:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            await conn.execute(statement, ("x",))
            if now >= warm_until:
                counts[slot] += 1


async def commit_rate(connections: int, seconds: float, table: str | None = None,
                      notify: bool = False) -> float:
    """Minimal INSERT+COMMIT transactions per second over ``connections`` connections
    (with ``notify``, each transaction also sends a ``pg_notify`` nobody listens to)."""
    dsn = await database_url()
    schema = None
    if table is None:
        schema = fresh_namespace("floor")
        await sql(f'CREATE SCHEMA "{schema}"')
        await sql(f'CREATE TABLE "{schema}".scratch (id bigint GENERATED ALWAYS AS IDENTITY '
                  "PRIMARY KEY, v text NOT NULL)")
        table = f'"{schema}".scratch'
    try:
        warm = min(0.3, seconds / 4)
        start = time.perf_counter()
        warm_until = start + warm
        stop_at = warm_until + seconds
        counts = [0] * connections
        statement = f"INSERT INTO {table} (v) VALUES (%s)"
        if notify:
            channel = f"{schema or 'bench'}_floor"
            statement = (f"WITH i AS ({statement} RETURNING id) "
                         f"SELECT pg_notify('{channel}', 'q') FROM i")
        await asyncio.gather(*(_writer(dsn, statement, stop_at, counts, i, warm_until)
                               for i in range(connections)))
        return sum(counts) / seconds
    finally:
        if schema is not None:
            await drop_schema(schema)


async def run(opts: Any) -> dict[str, Any]:
    """The ``floor`` workload: the commit rate on 1 and on 8 connections, and on 8 connections
    with a NOTIFY in each transaction."""
    seconds = float(opts.seconds or DEFAULT_SECONDS)
    one = await commit_rate(1, seconds)
    eight = await commit_rate(8, seconds)
    eight_notify = await commit_rate(8, seconds, notify=True)
    out = base_line("floor")
    out.update(pg_commit_per_s=round(eight, 1), pg_commit_per_s_1conn=round(one, 1),
               pg_commit_per_s_8conn=round(eight, 1),
               pg_commit_per_s_8conn_notify=round(eight_notify, 1), seconds=seconds)
    return out
