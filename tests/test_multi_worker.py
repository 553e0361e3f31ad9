"""Many workers, one truth: worker *processes* racing on one queue, killed and frozen.

Every activity execution is counted across processes: exactly once when no worker dies, at most
once more for work a killed (or frozen past its lease) worker held. Every result is checked, and
a run left ``running`` with nothing to move it fails the test with its history.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from memflow import Client
from tests.support import sql

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("MEMFLOW_MULTI_ROUNDS", "1"))


class Workers:
    """Worker processes of ``tests.multi_app`` on one namespace."""

    def __init__(self, dsn: str, namespace: str, lease: float):
        self.dsn, self.namespace, self.lease = dsn, namespace, lease
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self, count: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), MULTI_LEASE=str(self.lease))
        new = [subprocess.Popen([sys.executable, "-m", "tests.multi_app", self.dsn,
                                 self.namespace], cwd=ROOT, env=env, stdout=subprocess.PIPE)
               for _ in range(count)]
        for proc in new:
            assert proc.stdout is not None
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line.strip() == b"ready", line
        self.procs += new

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(10)


@pytest.fixture
async def workers(dsn: str, namespace: str, client: Client) -> AsyncIterator[Workers]:
    await client._namespace(namespace)  # creates the schema
    await sql(f'CREATE TABLE "{namespace}".exec_log (key text, pid int, '
              f'at timestamptz DEFAULT clock_timestamp())')
    pool = Workers(dsn, namespace, lease=5.0)  # no lapse on a loaded machine
    yield pool
    pool.stop_all()


async def executions(ns: str) -> Counter[str]:
    rows = await sql(f'SELECT key FROM "{ns}".exec_log')
    return Counter(r[0] for r in rows)


async def _twice_report(ns: str) -> str:
    rows = await sql(f"""SELECT key, array_agg(pid ORDER BY at), array_agg(at ORDER BY at)
      FROM "{ns}".exec_log GROUP BY key HAVING count(*) > 1 LIMIT 10""")
    return "\n".join(str(r) for r in rows)


async def _stuck_report(ns: str) -> str:
    rows = await sql(f"""SELECT w.workflow_id, w.status,
        (SELECT string_agg(t.kind || ':' || coalesce(t.lease_owner, '-') || ':' || t.attempts
                           || ':' || round(extract(epoch FROM t.visible_at - now()))::text, ' ')
           FROM "{ns}".tasks t WHERE t.run_id = w.run_id) AS tasks,
        (SELECT string_agg(s.idx || ':' || s.kind || ':' || s.status || ':' ||
                           coalesce(s.seq::text, '-'), ' ' ORDER BY s.idx)
           FROM "{ns}".steps s WHERE s.run_id = w.run_id) AS steps
      FROM "{ns}".workflows w WHERE w.status = 'running' LIMIT 10""")
    return "\n".join(str(r) for r in rows)


async def _race(client: Client, ns: str, n: int, during=None) -> None:
    """Start ``n`` racers and send each its signal at a random moment; check every result."""
    handles = [await client.workflow.start(args=[i], task_queue="multi", workflow_name="racer",
                                           workflow_id=f"racer-{i}") for i in range(n)]

    async def send(i: int) -> None:
        await asyncio.sleep(random.random() * 0.3)
        await client.workflow.signal(f"sig-{i}", {"n": i})

    senders = [asyncio.create_task(send(i)) for i in range(n)]
    if during is not None:
        await during()
    await asyncio.gather(*senders)
    try:
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    except TimeoutError:
        pytest.fail("runs left running:\n" + await _stuck_report(ns))
    for i, result in enumerate(results):
        assert result == [f"{i}-A", str({"n": i}), f"{i}-B", f"{i}-C"]


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_multi_workers_race_activities_signals_timers(workers: Workers, client: Client,
                                                            namespace: str, round_: int) -> None:
    await workers.start(3)
    await _race(client, namespace, 150)
    runs = await executions(namespace)
    assert len(runs) == 450 and set(runs.values()) == {1}, await _twice_report(namespace)


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_multi_workers_fan_out_with_signals(workers: Workers, client: Client,
                                                  namespace: str, round_: int) -> None:
    await workers.start(3)
    n = 60
    handles = [await client.workflow.start(args=[i], task_queue="multi", workflow_name="fanout",
                                           workflow_id=f"fan-{i}") for i in range(n)]
    for i in random.sample(range(n), n):
        await client.workflow.signal(f"fan-{i}", i)
    try:
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
    except TimeoutError:
        pytest.fail("runs left running:\n" + await _stuck_report(namespace))
    assert results == [9] * n
    runs = await executions(namespace)
    assert len(runs) == 7 * n and set(runs.values()) == {1}, await _twice_report(namespace)


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_multi_workers_one_killed(workers: Workers, client: Client, namespace: str,
                                        round_: int) -> None:
    workers.lease = 2.0
    await workers.start(3)

    async def kill_one() -> None:
        await asyncio.sleep(0.4)
        workers.procs[0].kill()

    await _race(client, namespace, 150, during=kill_one)
    runs = await executions(namespace)
    assert len(runs) == 450
    assert max(runs.values()) <= 2, runs.most_common(5)
    # only what the killed worker held when it died ran twice
    assert sum(c - 1 for c in runs.values()) <= 100


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_multi_workers_one_frozen_past_its_lease(workers: Workers, client: Client,
                                                       namespace: str, round_: int) -> None:
    workers.lease = 2.0
    await workers.start(3)
    frozen = workers.procs[0]

    async def freeze_one() -> None:
        await asyncio.sleep(0.3)
        frozen.send_signal(signal.SIGSTOP)
        await asyncio.sleep(workers.lease * 2.5)
        frozen.send_signal(signal.SIGCONT)

    await _race(client, namespace, 150, during=freeze_one)
    runs = await executions(namespace)
    assert len(runs) == 450
    assert max(runs.values()) <= 2, await _twice_report(namespace)
    assert sum(c - 1 for c in runs.values()) <= 100
