"""Flow control on queues, with three worker processes (tests/flow_worker.py): concurrency
never exceeded, per-key isolation, rate limits, priority order, debounce, live changes, the
worker's own concurrency, bad values."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from memflow import Client
from memflow.errors import DuplicateJobError
from tests.support import eventually, kill, spawn_ready, sql


@pytest.fixture
async def procs() -> AsyncIterator[list[subprocess.Popen[str]]]:
    """Worker processes of the test, killed at its end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        kill(proc)


async def workers(dsn: str, namespace: str, procs: list[subprocess.Popen[str]], n: int = 3,
                  **env: str) -> None:
    """Start ``n`` flow worker processes (after the slot log exists)."""
    await asyncio.gather(*(spawn_ready("tests.flow_worker", dsn, namespace, procs=procs, **env)
                           for _ in range(n)))


async def prepare(client: Client, namespace: str) -> None:
    """Migrate the namespace and create the slot log the workers' activities write."""
    await client._namespace(namespace)
    await sql(f'CREATE TABLE "{namespace}".slot_log (tag text, key text, event text, pid int, '
              "at timestamptz)")


async def slot_rows(namespace: str) -> list[tuple[str, str | None, str, int, datetime]]:
    """The slot log: (tag, key, event, pid, at), in time order."""
    return await sql(f'SELECT tag, key, event, pid, at FROM "{namespace}".slot_log '
                     "ORDER BY at, event")


def max_overlap(rows: list[Any], by: int | None = None) -> dict[Any, int]:
    """The most slots open at once, per value of column ``by`` (one group when None)."""
    open_now: dict[Any, int] = {}
    most: dict[Any, int] = {}
    for row in sorted(rows, key=lambda r: (r[4], r[2] == "start")):  # ends first on ties
        group = None if by is None else row[by]
        open_now[group] = open_now.get(group, 0) + (1 if row[2] == "start" else -1)
        most[group] = max(most.get(group, 0), open_now[group])
    return most


def starts(rows: list[Any]) -> list[tuple[str, datetime]]:
    """(tag, at) of each slot start, in time order."""
    return [(r[0], r[4]) for r in rows if r[2] == "start"]


async def test_workflow_concurrency_never_exceeded(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow", concurrency=3)
    await workers(dsn, namespace, procs)
    handles = [await client.workflow.start(args=[f"w{i}", 0.4], task_queue="flow",
                                           workflow_name="one") for i in range(12)]
    desc = await client.queue.describe("flow")
    assert desc.pending + desc.running == 12 and desc.running <= 3
    assert desc.limits == {"concurrency": 3, "per_key_concurrency": None, "rate_limit": None}
    assert "pending" in {(await h.describe()).status for h in handles}
    results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
    assert results == [f"w{i}" for i in range(12)]
    rows = await slot_rows(namespace)
    assert len(starts(rows)) == 12  # nothing dropped, nothing run twice
    assert max_overlap(rows)[None] == 3
    assert len({r[3] for r in rows}) > 1  # spread over the worker processes
    done = await client.queue.describe("flow")
    assert (done.running, done.pending, done.depth) == (0, 0, 0)


async def test_activity_concurrency_never_exceeded(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow-activity", concurrency=4)
    await workers(dsn, namespace, procs)
    tags = [f"a{i}" for i in range(16)]
    h = await client.workflow.start(args=[tags, [None] * 16, 0.3], task_queue="flow",
                                    workflow_name="fan")
    assert await h.result(timeout=60) == tags
    rows = await slot_rows(namespace)
    assert len(starts(rows)) == 16
    assert max_overlap(rows)[None] == 4


async def test_priority_order_under_a_backlog(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow", concurrency=1)
    await workers(dsn, namespace, procs)
    blocker = await client.workflow.start(args=["blocker", 1.0], task_queue="flow",
                                          workflow_name="one")

    async def blocker_started() -> bool:
        return bool(starts(await slot_rows(namespace)))
    await eventually(blocker_started)
    priorities = [0, 5, 1, 5, 0, 9, 1, 0, -3, 9]
    handles = [await client.workflow.start(args=[f"p{i}", 0.05], task_queue="flow",
                                           workflow_name="one", priority=p)
               for i, p in enumerate(priorities)]
    await blocker.result(timeout=30)
    await asyncio.gather(*(h.result(timeout=60) for h in handles))
    order = [tag for tag, _ in starts(await slot_rows(namespace))][1:]
    expected = [f"p{i}" for i, _ in sorted(enumerate(priorities), key=lambda x: (-x[1], x[0]))]
    assert order == expected


@pytest.mark.parametrize("high_name", ["paced", "paced_parent"])
async def test_a_runs_priority_holds_for_all_its_steps(dsn, namespace, client, procs,
                                                       high_name):
    """A high-priority run started while a backlog is under way gets through first, not only
    its first pass: its timers and later passes are claimed with its priority (one worker,
    one task at a time, so the queue's order decides) — and so are those of a child it
    starts (which inherits it). Without it, the run's later tasks queue behind each round
    of the backlog's, and it ends last."""
    await prepare(client, namespace)
    low = [await client.workflow.start(args=[f"low{i}", 8], task_queue="flow",
                                       workflow_name="paced") for i in range(20)]
    await workers(dsn, namespace, procs, n=1, FLOW_CONCURRENCY="1")

    async def two_rounds_done() -> bool:
        rows = await sql(f'SELECT count(*) FROM "{namespace}".steps '
                         "WHERE kind = 'sleep' AND status = 'done'")
        return int(rows[0][0]) >= 40
    await eventually(two_rounds_done)
    high = await client.workflow.start(args=["high", 8, 5], task_queue="flow",
                                       workflow_name=high_name, priority=5)
    await asyncio.gather(*(h.result(timeout=60) for h in [*low, high]))
    order = [tag for tag, _ in starts(await slot_rows(namespace))]
    assert order.index("high") == 0, order


async def test_per_key_isolation(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow-activity", per_key_concurrency=1)
    await workers(dsn, namespace, procs)
    tags = [f"k{k}-{i}" for k in range(3) for i in range(4)]
    keys = [f"customer-{k}" for k in range(3) for _ in range(4)]
    h = await client.workflow.start(args=[tags, keys, 0.25], task_queue="flow",
                                    workflow_name="fan")
    assert await h.result(timeout=60) == tags
    rows = await slot_rows(namespace)
    per_key = max_overlap(rows, by=1)
    assert per_key == {f"customer-{k}": 1 for k in range(3)}
    assert max_overlap(rows)[None] == 3  # the keys do not wait for each other


async def test_per_key_concurrency_of_workflows(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow", per_key_concurrency=2)
    await workers(dsn, namespace, procs)
    handles = [await client.workflow.start(args=[f"{k}-{i}", 0.3], task_queue="flow",
                                           workflow_name="one", concurrency_key=k)
               for k in ("a", "b") for i in range(5)]
    await asyncio.gather(*(h.result(timeout=60) for h in handles))
    rows = await slot_rows(namespace)
    by_key: dict[str, list[Any]] = {}
    for r in rows:
        by_key.setdefault(r[0].split("-")[0], []).append(r)
    assert {k: max_overlap(v)[None] for k, v in by_key.items()} == {"a": 2, "b": 2}
    assert max_overlap(rows)[None] == 4


async def test_rate_limit_over_several_periods(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow-activity", rate_limit=(5, "1 second"))
    await workers(dsn, namespace, procs)
    tags = [f"r{i}" for i in range(18)]
    h = await client.workflow.start(args=[tags, [None] * 18, 0.0], task_queue="flow",
                                    workflow_name="fan")
    assert await h.result(timeout=60) == tags
    times = sorted(at for _, at in starts(await slot_rows(namespace)))
    assert len(times) == 18
    # no sliding second (less a margin for the recording's own delay) holds more than 5
    for i in range(len(times) - 5):
        assert (times[i + 5] - times[i]).total_seconds() > 0.9, (i, times)
    span = (times[-1] - times[0]).total_seconds()
    assert 2.9 < span < 5.0  # 18 starts at 5 per second: three full periods, no more waiting


async def test_limits_changed_live(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await client.queue.configure("flow", concurrency=1)
    await workers(dsn, namespace, procs)
    handles = [await client.workflow.start(args=[f"l{i}", 0.6], task_queue="flow",
                                           workflow_name="one") for i in range(9)]

    async def n_started() -> int:
        return len(starts(await slot_rows(namespace)))
    await eventually(lambda: _at_least(n_started, 1))
    await asyncio.sleep(0.3)
    assert max_overlap(await slot_rows(namespace))[None] == 1
    await client.queue.configure("flow", concurrency=4)  # no restart: the claims see it
    await eventually(lambda: _at_least(n_started, 5), timeout=5)
    await client.queue.configure("flow")  # no limits at all: everything left starts
    await asyncio.gather(*(h.result(timeout=60) for h in handles))
    rows = await slot_rows(namespace)
    assert len(starts(rows)) == 9
    assert 4 <= max_overlap(rows)[None]
    assert (await client.queue.describe("flow")).limits["concurrency"] is None


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)


async def test_debounce_coalesces_starts(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await workers(dsn, namespace, procs, n=1)
    first = await client.workflow.start(args=["d1", 0.0], task_queue="flow",
                                        workflow_name="one", workflow_id="deb",
                                        debounce="0.8 seconds")
    assert (await first.describe()).status == "pending"
    for i in (2, 3):
        await asyncio.sleep(0.3)
        again = await client.workflow.start(args=[f"d{i}", 0.0], task_queue="flow",
                                            workflow_name="one", workflow_id="deb",
                                            debounce="0.8 seconds")
        assert again.run_id == first.run_id  # the same pending run, its args replaced
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await first.result(timeout=30) == "d3"
    assert loop.time() - began > 0.6  # the window restarted with the last start
    assert [t for t, _ in starts(await slot_rows(namespace))] == ["d3"]
    # once the run has started, a start of the id is a duplicate again
    with pytest.raises(DuplicateJobError):
        h = await client.workflow.start(args=["x", 5.0], task_queue="flow", workflow_name="one",
                                        workflow_id="live")
        await eventually(lambda: _running(h))
        await client.workflow.start(args=["y", 0.0], task_queue="flow", workflow_name="one",
                                    workflow_id="live", debounce="1 second")


async def _running(handle: Any) -> bool:
    return bool((await handle.describe()).status == "running")


async def test_worker_concurrency_bounds_activity_fan_out(dsn, namespace, client, procs):
    await prepare(client, namespace)
    await workers(dsn, namespace, procs, FLOW_CONCURRENCY="4")
    tags = [f"f{i}" for i in range(40)]
    h = await client.workflow.start(args=[tags, [None] * 40, 0.15], task_queue="flow",
                                    workflow_name="fan")
    assert await h.result(timeout=60) == tags
    rows = await slot_rows(namespace)
    per_process = max_overlap(rows, by=3)
    assert len(per_process) > 1  # the fan-out spread over the workers
    assert max(per_process.values()) <= 4


async def test_bad_values_change_nothing(namespace, client):
    await client.queue.configure("q", concurrency=2, rate_limit=(10, "1 minute"))
    before = (await client.queue.describe("q")).limits
    assert before == {"concurrency": 2, "per_key_concurrency": None, "rate_limit": (10, 60.0)}
    bad: list[tuple[type[Exception], dict[str, Any]]] = [
        (ValueError, {"concurrency": 0}), (ValueError, {"concurrency": -1}),
        (ValueError, {"per_key_concurrency": 0}), (TypeError, {"concurrency": "3"}),
        (TypeError, {"concurrency": True}), (ValueError, {"rate_limit": (10, "1 fortnight")}),
        (ValueError, {"rate_limit": (0, "1 second")}), (ValueError, {"rate_limit": (5,)}),
        (ValueError, {"rate_limit": (5, 0)}), (ValueError, {"rate_limit": 5}),
        (TypeError, {"namepsace": "x"}),
    ]
    for error, kwargs in bad:
        with pytest.raises(error):
            await client.queue.configure("q", **kwargs)
        assert (await client.queue.describe("q")).limits == before
    with pytest.raises(ValueError):
        await client.queue.configure("", concurrency=1)
    for error, kwargs in [(TypeError, {"priority": "high"}), (TypeError, {"priority": 1.5}),
                          (ValueError, {"priority": 2**40}),
                          (TypeError, {"concurrency_key": 7}),
                          (ValueError, {"concurrency_key": ""}),
                          (ValueError, {"debounce": "1 second"}),  # no workflow_id
                          (ValueError, {"debounce": "soon", "workflow_id": "d"}),
                          (ValueError, {"debounce": 0, "workflow_id": "d"})]:
        with pytest.raises(error):
            await client.workflow.start(args=[], task_queue="q", workflow_name="wf", **kwargs)
    assert await client.workflow.search("q", None, None, query={}) == []
    listed = await client.queue.list()
    assert [d.task_queue for d in listed] == ["q"]


async def test_dashboard_queue_page_shows_limits(namespace, client):
    from tests.dashboard_support import DashboardServer, http

    await client.queue.configure("shop", concurrency=3, rate_limit=(5, "1 minute"))
    await client.workflow.start(args=[], task_queue="shop", workflow_name="nobody_serves_it")
    with DashboardServer() as server:
        reply = await asyncio.to_thread(http, server.url("/queues", ns=namespace))
    assert reply.status == 200 and "shop" in reply.body
    assert "concurrency" in reply.body and "rate_limit" in reply.body
    assert "per_key_concurrency" not in reply.body  # only the limits that are set
