"""The test kit: time-skipping and local workflow environments, the activity environment."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from memflow import activity, workflow
from memflow.errors import MemFlowTimeoutError
from memflow.testing import ActivityEnvironment, WorkflowEnvironment
from tests.support import DSN, sql

DAY = timedelta(days=1)


async def db_clock(namespace: str) -> datetime:
    """The namespace's engine clock, read from the database."""
    ((value,),) = await sql(f'SELECT "{namespace}".clock()')
    return value


async def month_long_nap() -> float:
    return await workflow.sleep_for("30 days")


async def test_a_30_day_sleep_returns_at_once(memflow_env: WorkflowEnvironment) -> None:
    began, wall = memflow_env.now(), time.monotonic()
    await memflow_env.worker(task_queue="nap", workflow=month_long_nap)
    handle = await memflow_env.client.workflow.start(args=[], task_queue="nap",
                                                     workflow_name=month_long_nap)
    assert await handle.result(timeout=30) == 30 * 86400
    assert memflow_env.now() - began >= 30 * DAY
    assert await db_clock(memflow_env.namespace) - began >= 30 * DAY
    assert time.monotonic() - wall < 30  # 30 days of sleep took (a lot) less than 30 s
    description = await handle.describe()
    assert description.completed_at is not None and description.created_at is not None
    assert description.completed_at - description.created_at >= 30 * DAY


async def hourly_for_a_day() -> list:
    seen = []
    for _ in range(24):
        seen.append(await workflow.sleep_for("1 hour"))
    return seen


async def test_a_day_of_hourly_timers_is_skipped_timer_by_timer(
        memflow_env: WorkflowEnvironment) -> None:
    began = memflow_env.now()
    await memflow_env.worker(task_queue="h", workflow=hourly_for_a_day)
    handle = await memflow_env.client.workflow.start(args=[], task_queue="h",
                                                     workflow_name=hourly_for_a_day)
    assert await handle.result(timeout=30) == [3600.0] * 24
    assert DAY <= memflow_env.now() - began < DAY + timedelta(minutes=5)
    timeline = (await handle.export())["timeline"]
    assert len(timeline) == 24 and all(step["duration_ms"] >= 3600_000 for step in timeline)


async def patient(signal_id: str) -> dict:
    try:
        return {"got": await workflow.wait_for(signal_id, timeout=7 * 86400)}
    except MemFlowTimeoutError as err:
        return {"timed_out": err.code}


async def test_a_7_day_wait_for_timeout(memflow_env: WorkflowEnvironment) -> None:
    began = memflow_env.now()
    await memflow_env.worker(task_queue="w", workflow=patient)
    handle = await memflow_env.client.workflow.start(args=["never"], task_queue="w",
                                                     workflow_name=patient)
    assert await handle.result(timeout=30) == {"timed_out": 596}
    assert 7 * DAY <= memflow_env.now() - began < 8 * DAY


ATTEMPTS: list[tuple[int, datetime]] = []


async def flaky_hourly() -> str:
    info = activity.info()
    ATTEMPTS.append((info.attempt, await db_clock(info.namespace)))
    if info.attempt < 3:
        raise RuntimeError(f"attempt {info.attempt} fails")
    return "third time lucky"


async def retries_hourly() -> str:
    acts = workflow.proxy_activities(
        activities=[flaky_hourly],
        retry_policy={"maximum_attempts": 3, "initial_interval": "1 hour",
                      "maximum_interval": "1 day", "backoff_coefficient": 2})
    return await acts.flaky_hourly()


async def test_retries_with_hour_long_backoff(memflow_env: WorkflowEnvironment) -> None:
    ATTEMPTS.clear()
    await memflow_env.worker(task_queue="r", workflow=retries_hourly, activities=[flaky_hourly])
    handle = await memflow_env.client.workflow.start(args=[], task_queue="r",
                                                     workflow_name=retries_hourly)
    assert await handle.result(timeout=30) == "third time lucky"
    assert [a for a, _ in ATTEMPTS] == [1, 2, 3]
    (_, t1), (_, t2), (_, t3) = ATTEMPTS
    assert timedelta(hours=1) <= t2 - t1 < timedelta(hours=1, minutes=1)
    assert timedelta(hours=2) <= t3 - t2 < timedelta(hours=2, minutes=1)


CLOCK_DURING: list[datetime] = []


async def one_real_second() -> str:
    namespace = activity.info().namespace
    CLOCK_DURING.append(await db_clock(namespace))
    await asyncio.sleep(1.0)
    CLOCK_DURING.append(await db_clock(namespace))
    return "worked"


async def works_while_a_timer_waits() -> list:
    acts = workflow.proxy_activities(activities=[one_real_second])
    return await asyncio.gather(acts.one_real_second(), workflow.sleep_for("1 hour"))


async def test_no_skip_while_an_activity_runs(memflow_env: WorkflowEnvironment) -> None:
    CLOCK_DURING.clear()
    await memflow_env.worker(task_queue="busy", workflow=works_while_a_timer_waits,
                             activities=[one_real_second])
    handle = await memflow_env.client.workflow.start(args=[], task_queue="busy",
                                                     workflow_name=works_while_a_timer_waits)
    assert await handle.result(timeout=30) == ["worked", 3600.0]
    started, ended = CLOCK_DURING
    # the hour was skipped only after the activity ended, never while it ran
    assert timedelta(seconds=0.9) <= ended - started < timedelta(minutes=1)
    assert memflow_env.now() - started >= timedelta(minutes=59)


async def test_parallel_environments_keep_their_own_clocks() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as fast, \
            await WorkflowEnvironment.start_time_skipping() as still:
        assert fast.namespace != still.namespace
        await fast.worker(task_queue="nap", workflow=month_long_nap)
        await still.worker(task_queue="nap", workflow=patient)
        waiting = await still.client.workflow.start(args=["later"], task_queue="nap",
                                                    workflow_name=patient)
        with still.auto_time_skipping_disabled():
            handle = await fast.client.workflow.start(args=[], task_queue="nap",
                                                      workflow_name=month_long_nap)
            assert await handle.result(timeout=20) == 30 * 86400
            real = datetime.now(UTC)
            assert fast.now() - real >= 29 * DAY
            assert abs(still.now() - real) < timedelta(minutes=1)
            assert abs(await db_clock(still.namespace) - real) < timedelta(minutes=1)
            await still.client.workflow.signal("later", "in time")
        assert await waiting.result(timeout=20) == {"got": "in time"}


async def approval(request_id: str) -> str:
    try:
        return await workflow.wait_for(f"approve-{request_id}", timeout="7 days")
    except MemFlowTimeoutError:
        return "expired"


async def test_docs_approval_example(memflow_env: WorkflowEnvironment) -> None:
    env = memflow_env
    await env.worker(task_queue="approvals", workflow=approval)
    with env.auto_time_skipping_disabled():
        handle = await env.client.workflow.start(args=["r1"], task_queue="approvals",
                                                 workflow_name=approval)
        await env.sleep("6 days")
        await env.client.workflow.signal("approve-r1", "approved")
    assert await handle.result(timeout=30) == "approved"
    late = await env.client.workflow.start(args=["r2"], task_queue="approvals",
                                           workflow_name=approval)
    assert await late.result(timeout=30) == "expired"


async def day_sleeper(days: float) -> float:
    return await workflow.sleep_for(days * 86400)


async def test_sleep_moves_the_clock_and_fires_timers_on_the_way(
        memflow_env: WorkflowEnvironment) -> None:
    await memflow_env.worker(task_queue="d", workflow=day_sleeper)
    began = memflow_env.now()
    with memflow_env.auto_time_skipping_disabled():
        one = await memflow_env.client.workflow.start(args=[1], task_queue="d",
                                                      workflow_name=day_sleeper)
        five = await memflow_env.client.workflow.start(args=[5], task_queue="d",
                                                       workflow_name=day_sleeper)
        await asyncio.sleep(0.3)  # the workflows start sleeping; no time passes meanwhile
        assert memflow_env.now() - began < timedelta(minutes=1)
        await memflow_env.sleep("3 days")
        assert 3 * DAY <= memflow_env.now() - began < 3 * DAY + timedelta(minutes=1)
        assert await one.result(timeout=30) == 86400
        assert (await five.describe()).status == "running"
    # auto-skipping again: the 5-day sleeper finishes at once
    assert await five.result(timeout=30) == 5 * 86400
    assert memflow_env.now() - began >= 5 * DAY


async def test_bad_sleep_duration_is_a_clear_error(memflow_env: WorkflowEnvironment) -> None:
    with pytest.raises(ValueError, match="sleep duration"):
        await memflow_env.sleep("a fortnight")


async def quick_nap() -> float:
    return await workflow.sleep_for(0.2)


async def test_local_environment_runs_in_real_time(
        memflow_local_env: WorkflowEnvironment) -> None:
    env = memflow_local_env
    assert not env.supports_time_skipping
    await env.worker(task_queue="l", workflow=quick_nap)
    wall = time.monotonic()
    handle = await env.client.workflow.start(args=[], task_queue="l", workflow_name=quick_nap)
    assert await handle.result(timeout=30) == 0.2
    assert time.monotonic() - wall >= 0.2
    assert abs(await db_clock(env.namespace) - datetime.now(UTC)) < timedelta(minutes=1)
    before = env.now()
    await env.sleep(0.1)
    assert timedelta(seconds=0.1) <= env.now() - before < timedelta(minutes=1)


async def test_environment_namespace_is_dropped_and_workers_stopped_at_exit() -> None:
    async with await WorkflowEnvironment.start_time_skipping(connection=DSN) as env:
        worker = await env.worker(task_queue="nap", workflow=month_long_nap)
        namespace = env.namespace
        assert await sql("SELECT 1 FROM pg_namespace WHERE nspname = %s", namespace)
    assert not await sql("SELECT 1 FROM pg_namespace WHERE nspname = %s", namespace)
    assert worker._stopped.is_set()
    with pytest.raises(RuntimeError, match="shut down"):
        await env.worker(task_queue="nap", workflow=month_long_nap)
    with pytest.raises(TypeError):
        await WorkflowEnvironment.start_local(connection=42)


def beating(n: int) -> str:
    for i in range(n):
        activity.heartbeat({"done": i})
    info = activity.info()
    return f"{info.activity_name} attempt {info.attempt} of {info.workflow_id}"


async def async_beating(n: int) -> int:
    for i in range(n):
        activity.heartbeat(i)
        await asyncio.sleep(0)
    return n


async def test_activity_environment_fills_info_and_captures_heartbeats() -> None:
    env = ActivityEnvironment()
    assert await env.run(beating, 2) == "beating attempt 1 of test-workflow"
    assert env.heartbeats == [{"done": 0}, {"done": 1}]
    assert await env.run(async_beating, 3) == 3
    assert env.heartbeats[2:] == [0, 1, 2]
    env = ActivityEnvironment(workflow_id="wf-1", attempt=4)
    assert await env.run(beating, 0) == "beating attempt 4 of wf-1"
    with pytest.raises(ValueError, match="attempt"):
        ActivityEnvironment(attempt=0)
    with pytest.raises(TypeError, match="not a function"):
        await ActivityEnvironment().run("beating")


def beats_until_cancelled() -> str:
    for _ in range(1000):
        activity.heartbeat()
        time.sleep(0.01)
    return "never cancelled"


async def async_beats_until_cancelled() -> str:
    for _ in range(1000):
        activity.heartbeat()
        await asyncio.sleep(0.01)
    return "never cancelled"


@pytest.mark.parametrize("fn", [beats_until_cancelled, async_beats_until_cancelled])
async def test_activity_environment_cancel_is_delivered_by_heartbeat(fn) -> None:
    env = ActivityEnvironment()
    running = asyncio.ensure_future(env.run(fn))
    await asyncio.sleep(0.1)
    assert not running.done()
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 10)
    assert 0 < len(env.heartbeats) < 1000


def test_heartbeat_outside_a_cancelled_activity_does_not_raise() -> None:
    activity.heartbeat("nobody listens")  # outside any activity: a no-op
    info = activity.ActivityInfo("a", 1, "wf", "q")
    token = activity._current.set(info)
    try:
        activity.heartbeat(1)
        info.request_cancel()
        with pytest.raises(asyncio.CancelledError):
            activity.heartbeat(2)
    finally:
        activity._current.reset(token)


async def stamp() -> str:
    info = workflow.info()
    assert info.scheduled_at is not None
    return workflow.now().isoformat()


async def test_an_hourly_schedule_over_a_skipped_day_runs_24_times(
        memflow_env: WorkflowEnvironment) -> None:
    wall = time.monotonic()
    await memflow_env.worker(task_queue="rep", workflow=stamp)
    began = memflow_env.now()
    first = began.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    sched = await memflow_env.client.schedule.create(
        "hourly", workflow_name="stamp", task_queue="rep", every="1 hour")
    await memflow_env.sleep("1 day")
    rows = await sql(f"""SELECT workflow_id, status, result FROM "{memflow_env.namespace}".workflows
                          WHERE workflow_id LIKE 'hourly-%%' ORDER BY workflow_id""")
    assert [r[0] for r in rows] == [
        f"hourly-{first + timedelta(hours=h):%Y-%m-%dT%H:%M:%SZ}" for h in range(24)]
    await sched.pause()
    for _wf_id, status, result in rows:
        assert status == "completed"
        assert datetime.fromisoformat(result) >= first  # workflow.now() follows the clock
    assert time.monotonic() - wall < 60
