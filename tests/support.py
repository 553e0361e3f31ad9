"""Helpers for tests: the test database, small waiting utilities, and the pieces of the
suite's worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DSN = "postgresql://root@127.0.0.1:5432/test"


def _database_url() -> str:
    url = os.environ.get("MEMFLOW_DATABASE_URL")
    if url:
        return url
    try:
        with psycopg.connect(DEFAULT_DSN, connect_timeout=3):
            return DEFAULT_DSN
    except psycopg.OperationalError:
        from memflow.embedded import embedded_dsn

        return embedded_dsn()


DSN = _database_url()
os.environ.setdefault("MEMFLOW_DATABASE_URL", DSN)


async def sql(query: str, *params: object) -> list[tuple]:
    """Run one statement on the test database (for assertions about stored rows)."""
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):
    """Wait until ``await check()`` is truthy; returns its value or fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


async def spawn_ready(module: str, *args: str,
                      procs: list[subprocess.Popen[str]] | None = None,
                      **env: str) -> subprocess.Popen[str]:
    """Run ``python -m module args`` (with ``env`` added) until it prints ``ready``; the process
    goes into ``procs`` first, so a test that fails meanwhile still kills it."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    if procs is not None:
        procs.append(proc)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == "ready"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc`` unless it has ended, and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def log_execution(step: int) -> None:
    """In an activity: record this execution of step ``step`` in ``<namespace>.exec_log``
    (step, pid), so a test can count executions across processes; then, when the environment
    says ``HANG_ACTIVITY=<step>``, hang (for a test to SIGKILL the process right there)."""
    from memflow import activity

    namespace = activity.info().namespace
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{namespace}".exec_log (step, pid) VALUES (%s, %s)',
                     (step, os.getpid()))
    if os.environ.get("HANG_ACTIVITY") == str(step):
        time.sleep(120)


def serve_worker(task_queue: str, workflows: list[Any], **create: Any) -> None:
    """The body of a worker process of the suite, ``python -m tests.<module> DSN NAMESPACE``:
    a worker of ``task_queue`` for ``workflows`` (``create``: more ``Worker.create``
    arguments) that prints ``ready`` once it is created (see ``spawn_ready``) and runs until
    stopped."""
    from memflow import Worker

    async def main() -> None:
        worker = await Worker.create(connection=sys.argv[1], task_queue=task_queue,
                                     workflow=workflows, namespace=sys.argv[2], **create)
        print("ready", flush=True)
        await worker.run()

    asyncio.run(main())
