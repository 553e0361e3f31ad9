"""Schedules with worker processes: each tick starts exactly once across workers and crashes,
and the six overlap policies behave as Temporal's."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memflow import Client
from tests.support import eventually, kill, spawn_ready, sql


async def spawn(dsn: str, namespace: str, procs: list[subprocess.Popen[str]],
                **env: str) -> subprocess.Popen[str]:
    """Start a schedule worker process (added to ``procs`` first, so the test kills it)."""
    return await spawn_ready("tests.schedule_worker", dsn, namespace, procs=procs, **env)


async def log_starts(client: Client, namespace: str) -> None:
    """Record every start of a workflow run (a new row, or an id reused by a new run)."""
    await client._namespace(namespace)
    await sql(f'CREATE TABLE "{namespace}".start_log (workflow_id text, run_id text)')
    await sql(f'''CREATE FUNCTION "{namespace}".log_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "{namespace}".start_log VALUES (NEW.workflow_id, NEW.run_id);
    RETURN NEW;
END $$''')
    await sql(f'''CREATE TRIGGER log_start AFTER INSERT OR UPDATE OF run_id
ON "{namespace}".workflows FOR EACH ROW EXECUTE FUNCTION "{namespace}".log_start()''')


async def starts(namespace: str, prefix: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in await sql(
        f'SELECT workflow_id, run_id FROM "{namespace}".start_log '
        "WHERE workflow_id LIKE %s ORDER BY workflow_id", prefix + "-%")]


async def test_three_workers_one_killed_mid_tick_start_each_tick_once(
        dsn: str, namespace: str, client: Client, tmp_path: Path) -> None:
    await log_starts(client, namespace)
    marker = tmp_path / "hang"
    procs: list[subprocess.Popen[str]] = []
    try:
        hanging = await spawn(dsn, namespace, procs, HANG_TICK="2", HANG_MARKER=str(marker))
        for _ in range(2):
            await spawn(dsn, namespace, procs)
        sched = await client.schedule.create("beat", workflow_name="stamp", task_queue="sched",
                                             every="1 second", overlap="allow_all")
        # the hanging worker eventually claims a tick and freezes inside its transaction
        await eventually(lambda: asyncio.sleep(0, marker.exists()), timeout=30)
        await asyncio.sleep(1.5)  # it holds the schedule's lock: the others must wait
        kill(hanging)
        await eventually(lambda: _count(namespace, "beat", 6), timeout=30)
        await sched.pause()
        rows = await starts(namespace, "beat")
    finally:
        for proc in procs:
            kill(proc)
    ids = [wf_id for wf_id, _ in rows]
    assert len(ids) == len(set(ids)), "a tick started twice"
    times = sorted(_tick_time(wf_id) for wf_id in ids)
    expected = [times[0] + timedelta(seconds=i)
                for i in range(int((times[-1] - times[0]).total_seconds()) + 1)]
    assert times == expected, "a tick is missing"
    desc = await sched.describe()
    assert desc.missed == 0 and desc.skipped == 0
    done = await client.workflow.get_handle(workflow_id=ids[0]).result(timeout=30)
    assert done == {"workflow_id": ids[0], "schedule_id": "beat",
                    "scheduled_at": times[0].isoformat()}


async def test_overlap_policies_with_runs_slower_than_the_interval(
        dsn: str, namespace: str, client: Client) -> None:
    policies = ["skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other",
                "allow_all"]
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(2):
            await spawn(dsn, namespace, procs)
        scheds = {p: await client.schedule.create(
            p, workflow_name="slow", task_queue="sched", args=[2.2], every="1 second",
            overlap=p) for p in policies}
        await asyncio.sleep(6.5)
        buffered = {p: (await s.describe()).buffered for p, s in scheds.items()}
        for s in scheds.values():
            await s.pause()
        descs = {p: await s.describe() for p, s in scheds.items()}
        runs = {p: await _runs(namespace, p) for p in policies}
    finally:
        for proc in procs:
            kill(proc)
    for p in ("skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other"):
        assert _never_overlap(runs[p]), (p, runs[p])
    assert not _never_overlap(runs["allow_all"]), runs["allow_all"]
    assert len(runs["allow_all"]) >= 5
    # skip: ticks during a run are dropped and counted
    assert descs["skip"].skipped >= 2 and len(runs["skip"]) <= 4
    # buffer_one: one tick waits (and starts late, when the run closes), later ones dropped
    assert descs["buffer_one"].skipped >= 1 and len(buffered["buffer_one"]) <= 1
    assert any(r[3] - r[0] > 0.5 for r in runs["buffer_one"]), runs["buffer_one"]
    # buffer_all: nothing is dropped, ticks queue up
    assert descs["buffer_all"].skipped == 0 and len(buffered["buffer_all"]) >= 2
    # terminate_other: every tick starts at once, ending the run before it
    statuses = [r[2] for r in runs["terminate_other"]]
    assert len(statuses) >= 5 and descs["terminate_other"].skipped == 0, statuses
    assert set(statuses[:-1]) == {"interrupted"}, statuses
    # cancel_other: the open run is cancelled (cooperatively: it ends "cancelled"), and the
    # tick starts once it has closed
    statuses = [r[2] for r in runs["cancel_other"]]
    assert len(statuses) >= 4, statuses
    assert set(statuses[:-1]) == {"cancelled"}, statuses


async def _count(namespace: str, prefix: str, n: int) -> bool:
    rows = await sql(f'SELECT count(*) FROM "{namespace}".workflows w WHERE workflow_id LIKE %s '
                     "AND status = 'completed'", prefix + "-%")
    return int(rows[0][0]) >= n


def _tick_time(workflow_id: str) -> datetime:
    """The tick time in a run's id ``<schedule_id>-%Y-%m-%dT%H:%M:%SZ``."""
    return datetime.strptime(workflow_id[-20:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def _runs(namespace: str, schedule_id: str) -> list[tuple[float, float, str, float]]:
    """(scheduled, completed, status, created) of a schedule's runs, times in epoch seconds
    (completed: now for an open run)."""
    rows = await sql(f'''SELECT extract(epoch FROM r.scheduled_at)::float8,
       extract(epoch FROM coalesce(w.completed_at, now()))::float8, w.status,
       extract(epoch FROM w.created_at)::float8
  FROM "{namespace}".schedule_runs r JOIN "{namespace}".workflows w USING (workflow_id)
 WHERE r.schedule_id = %s ORDER BY r.scheduled_at''', schedule_id)
    return [(float(r[0]), float(r[1]), str(r[2]), float(r[3])) for r in rows]


# Recorded times are their transaction's start (the engine clock is now()): the tick that
# starts the next run can begin a few microseconds before the previous run's completion and
# still read it (once committed), so its created_at may precede that completed_at by as much.
SAME_MOMENT = 0.01


def _never_overlap(runs: list[tuple[float, float, str, float]]) -> bool:
    ordered = sorted(runs, key=lambda r: r[3])
    return all(b[3] >= a[1] - SAME_MOMENT for a, b in itertools.pairwise(ordered))
