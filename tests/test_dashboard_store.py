"""The dashboard's reads (memflow/store/dashboard.py) and its timeline layout, on real rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memflow import Client
from memflow.dashboard.timeline import lanes, layout
from memflow.store import NamespaceStore, Store
from memflow.store.dashboard import DashboardQueries, RunCursor, RunFilter, StepRow
from tests.support import DSN, sql


async def _queries(namespace: str) -> DashboardQueries:
    return DashboardQueries(await NamespaceStore.open(await Store.get(DSN), namespace))


async def _seed(namespace: str, n: int, **columns: str) -> None:
    """``n`` runs created in the same instant (ties the keyset must break by id)."""
    await sql(f"""INSERT INTO "{namespace}".workflows (workflow_id, run_id, name, task_queue,
                  status, args, created_at)
                  SELECT %s || lpad(i::text, 4, '0'), 'r-' || %s || i, %s, %s, %s, '[]',
                         '2026-01-01T00:00:00Z'
                    FROM generate_series(1, %s) i""",
              columns.get("prefix", "w-"), columns.get("prefix", "w-"),
              columns.get("name", "flow"), columns.get("queue", "q"),
              columns.get("status", "running"), n)


async def test_keyset_pages_cover_every_run_once(namespace):
    q = await _queries(namespace)
    await _seed(namespace, 130)
    await _seed(namespace, 5, prefix="x_", status="failed", name="other", queue="q2")
    seen, after = [], None
    while True:
        page = await q.list_runs(RunFilter(), after, 40)
        seen += [r.workflow_id for r in page]
        if len(page) < 40:
            break
        after = RunCursor(page[-1].created_at, page[-1].workflow_id)
    assert len(seen) == 135 and len(set(seen)) == 135
    assert seen == sorted(seen, reverse=True)
    assert {r.workflow_id for r in await q.list_runs(RunFilter(status="failed"))} == {
        f"x_{i:04d}" for i in range(1, 6)}
    assert len(await q.list_runs(RunFilter(name="other", task_queue="q2"))) == 5
    assert await q.list_runs(RunFilter(name="other", task_queue="q")) == []
    with pytest.raises(ValueError, match="limit"):
        await q.list_runs(RunFilter(), None, 0)


async def test_id_prefix_is_literal(namespace):
    q = await _queries(namespace)
    await _seed(namespace, 3, prefix="a_b%")
    await _seed(namespace, 3, prefix="aXbY")
    assert len(await q.list_runs(RunFilter(id_prefix="a_b%"))) == 3
    assert len(await q.list_runs(RunFilter(id_prefix="a_"))) == 3
    assert len(await q.list_runs(RunFilter(id_prefix="a"))) == 6
    assert await q.list_runs(RunFilter(id_prefix="%")) == []


async def test_time_range(namespace):
    q = await _queries(namespace)
    await _seed(namespace, 2)
    day = datetime(2026, 1, 1, tzinfo=UTC)
    assert len(await q.list_runs(RunFilter(since=day, until=day + timedelta(seconds=1)))) == 2
    assert await q.list_runs(RunFilter(since=day + timedelta(seconds=1))) == []
    assert await q.list_runs(RunFilter(until=day)) == []


async def test_steps_page_by_keyset_and_threads(namespace):
    q = await _queries(namespace)
    await _seed(namespace, 1)
    await sql(f"""INSERT INTO "{namespace}".steps (run_id, dim, idx, kind, name, status,
                  created_at, completed_at)
                  SELECT 'r-w-1', d, i, 'activity', 'act', 'done', now(), now()
                    FROM generate_series(0, 249) i, unnest(ARRAY['', '.3']) d""")
    await sql(f"""INSERT INTO "{namespace}".threads (run_id, dim, name, task_queue, args,
                  status) VALUES ('r-w-1', '.3', 'helper', 'q', '[]', 'completed')""")
    threads = await q.threads("r-w-1")
    assert [(t.dim, t.name, t.steps) for t in threads] == [("", None, 250),
                                                             (".3", "helper", 250)]
    seen, after = [], None
    while page := await q.steps("r-w-1", after=after, limit=120):
        seen += [(s.dim, s.idx) for s in page]
        after = (page[-1].dim, page[-1].idx)
    assert seen == sorted(seen) and len(set(seen)) == 500
    assert [s.idx for s in await q.steps("r-w-1", dim=".3", limit=3)] == [0, 1, 2]


async def test_schedules_without_a_table_and_queues(namespace):
    q = await _queries(namespace)
    assert await q.schedules() == []  # the schedules table comes with the namespace (v6)
    await Client(connection=DSN, namespace=namespace).schedule.create(
        "nightly", workflow_name="report", task_queue="q", cron="0 3 * * *")
    [doc] = await q.schedules() or []
    assert (doc["schedule_id"], doc["paused"]) == ("nightly", False)
    await _seed(namespace, 1)
    await sql(f"""INSERT INTO "{namespace}".tasks (queue, kind, run_id, visible_at)
                  VALUES ('q', 'w', 'r-w-1', now() - interval '5 seconds'),
                         ('q', 't', 'r-w-1', now() + interval '1 hour')""")
    (row,) = await q.queues()
    assert (row.queue, row.ready, row.running, row.delayed) == ("q", 1, 0, 1)
    assert row.oldest_ready_at is not None


def _step(idx: int, start: float, end: float | None, dim: str = "") -> StepRow:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return StepRow(dim, idx, "activity", "a", "done" if end is not None else "pending", None,
                   None, t0 + timedelta(seconds=start),
                   None if end is None else t0 + timedelta(seconds=end), None)


def test_timeline_lanes_put_parallel_steps_side_by_side():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [_step(0, 0, 1), _step(1, 1, 3), _step(2, 1, 2), _step(3, 1, 4), _step(4, 4, 5),
             _step(0, 2, 3, dim=".5")]
    bars = layout(steps, t0, t0 + timedelta(seconds=10))
    by_idx = {(b.step.dim, b.step.idx): b for b in bars}
    assert by_idx[("", 0)].left == 0 and by_idx[("", 0)].width == 100
    assert {by_idx[("", i)].lane for i in (1, 2, 3)} == {0, 1, 2}
    assert by_idx[("", 4)].lane == 0 and by_idx[("", 4)].left == 400
    assert [(lane.dim, lane.number, len(lane.bars)) for lane in lanes(bars)] == [
        ("", 0, 3), ("", 1, 1), ("", 2, 1), (".5", 0, 1)]
    running = layout([_step(0, 0, None)], t0, None, now=t0 + timedelta(seconds=4))
    assert running[0].duration is None and running[0].width == 1000
