"""The schedule API: next runs across time zones and DST, bad input, pause/unpause, trigger,
backfill, catch-up, update and delete."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memflow import Client, Worker, workflow
from memflow.errors import MemFlowError, ScheduleAlreadyExistsError, ScheduleNotFoundError
from memflow.schedules.spec import parse_spec
from tests.support import eventually, sql

NY = ZoneInfo("America/New_York")


async def stamp(label: str = "") -> dict[str, str | None]:
    info = workflow.info()
    at = info.scheduled_at
    return {"id": info.workflow_id, "at": None if at is None else at.isoformat(), "label": label}


async def flaky() -> str:
    info = workflow.info()
    if info.attempt == 1:
        raise RuntimeError("first attempt fails")
    return f"ok on attempt {info.attempt}"


async def slow(seconds: float) -> None:
    await workflow.sleep_for(seconds)


def local(*args: int, zone: ZoneInfo = NY) -> str:
    return datetime(*args, tzinfo=zone).isoformat()


async def next_runs(client: Client, sid: str, **spec: object) -> list[str]:
    sched = await client.schedule.create(sid, workflow_name="stamp", task_queue="q", **spec)
    return [d.isoformat() for d in (await sched.describe()).next_runs]


async def test_next_runs_across_time_zones_and_dst(client: Client) -> None:
    # spring forward (2027-03-14, 02:00 -> 03:00): 02:30 does not exist; it runs once, at 03:00
    assert await next_runs(client, "spring", cron="30 2 * * *", timezone="America/New_York",
                           start_at=datetime(2027, 3, 13, tzinfo=NY)) == [
        "2027-03-13T02:30:00-05:00", "2027-03-14T03:00:00-04:00", "2027-03-15T02:30:00-04:00",
        "2027-03-16T02:30:00-04:00", "2027-03-17T02:30:00-04:00"]
    # fall back (2027-11-07, 02:00 -> 01:00): 01:30 happens twice; it runs once, the first time
    assert await next_runs(client, "fall", cron="30 1 * * *", timezone="America/New_York",
                           start_at="2027-11-06T00:00:00") == [
        "2027-11-06T01:30:00-04:00", "2027-11-07T01:30:00-04:00", "2027-11-08T01:30:00-05:00",
        "2027-11-09T01:30:00-05:00", "2027-11-10T01:30:00-05:00"]
    # an hourly job follows real time: both 01:00s of the fall-back night
    assert await next_runs(client, "hourly", cron="0 * * * *", timezone="America/New_York",
                           start_at=datetime(2027, 11, 7, 0, 30, tzinfo=NY)) == [
        "2027-11-07T01:00:00-04:00", "2027-11-07T01:00:00-05:00", "2027-11-07T02:00:00-05:00",
        "2027-11-07T03:00:00-05:00", "2027-11-07T04:00:00-05:00"]
    # several expressions are merged; other zones; end_at stops the list
    paris = ZoneInfo("Europe/Paris")
    assert await next_runs(client, "paris", cron=["0 9 * * 1-5", "0 12 * * 6"],
                           timezone="Europe/Paris", start_at=datetime(2027, 3, 26, tzinfo=paris),
                           end_at=datetime(2027, 3, 30, 23, 0, tzinfo=paris)) == [
        local(2027, 3, 26, 9, zone=paris), local(2027, 3, 27, 12, zone=paris),
        local(2027, 3, 29, 9, zone=paris), local(2027, 3, 30, 9, zone=paris)]
    # intervals are elapsed time aligned to the epoch, whatever the zone
    assert await next_runs(client, "every", every=timedelta(hours=1), timezone="Asia/Kolkata",
                           start_at=datetime(2030, 1, 1, 0, 10, tzinfo=UTC)) == [
        datetime(2030, 1, 1, h, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata")).isoformat()
        for h in range(1, 6)]
    desc = await client.schedule.get_handle("every").describe()
    assert desc.every == 3600 and desc.cron == [] and desc.timezone == "Asia/Kolkata"
    assert [d.schedule_id for d in await client.schedule.list()] == [
        "every", "fall", "hourly", "paris", "spring"]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "not a cron"}, "cron"),
    ({"cron": []}, "cron"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"cron": "* * * * *", "overlap": "sometimes"}, "overlap"),
    ({"every": "soon"}, "every"),
    ({"every": "1.5 seconds"}, "every"),
    ({"every": 0}, "every"),
    ({"every": 5, "catchup_window": "forever"}, "catchup_window"),
    ({"every": 5, "jitter": "-1s"}, "jitter"),
    ({"every": 5, "start_at": "tomorrow"}, "start_at"),
    ({}, "cron"),
])
async def test_bad_input_is_a_value_error_naming_the_field_and_writes_nothing(
        client: Client, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        await client.schedule.create("bad", workflow_name="stamp", task_queue="q", **kwargs)
    assert await client.schedule.list() == []


async def test_taken_and_unknown_ids_and_unknown_keywords(client: Client) -> None:
    sched = await client.schedule.create("s", workflow_name=stamp, task_queue="q", every=60)
    with pytest.raises(ScheduleAlreadyExistsError) as taken:
        await client.schedule.create("s", workflow_name="stamp", task_queue="q", every=60)
    assert isinstance(taken.value, MemFlowError) and taken.value.schedule_id == "s"
    with pytest.raises(TypeError):
        await client.schedule.create("t", workflow_name="stamp", task_queue="q", every=60,
                                     namepsace="other")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await sched.update(crom="* * * * *")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="cron"):
        await sched.update(cron="every day")
    assert (await sched.describe()).every == 60  # a bad update changes nothing
    missing = client.schedule.get_handle("nope")
    for call in (missing.describe(), missing.pause(), missing.unpause(), missing.trigger(),
                 missing.delete(), missing.update(every=5)):
        with pytest.raises(ScheduleNotFoundError):
            await call
    await sched.delete()
    assert await client.schedule.list() == []


async def test_pause_unpause_and_update(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="q", workflow=[stamp], namespace=namespace)
    sched = await client.schedule.create("p", workflow_name="stamp", task_queue="q",
                                         every="1 second", args=["a"], note="created")
    await eventually(lambda: _runs(namespace, "p", 1), timeout=20)
    await sched.pause(note="maintenance")
    desc = await sched.describe()
    assert desc.paused and desc.note == "maintenance"
    count = len(await _run_ids(namespace, "p"))
    await asyncio.sleep(2.5)
    assert len(await _run_ids(namespace, "p")) == count  # nothing starts while paused
    await sched.update(args=["b"])
    await sched.unpause(note="back")
    desc = await sched.describe()
    assert not desc.paused and desc.note == "back" and desc.args == ["b"]
    await eventually(lambda: _runs(namespace, "p", count + 1), timeout=20)
    newest = (await _run_ids(namespace, "p"))[-1]
    result = await client.workflow.get_handle(workflow_id=newest).result(timeout=20)
    assert result["label"] == "b"
    await sched.update(every=None, cron="0 0 1 1 *")
    desc = await sched.describe()
    assert desc.every is None and desc.cron == ["0 0 1 1 *"]
    assert desc.next_runs[0].month == 1 and desc.next_runs[0].day == 1


async def test_trigger_starts_one_run_now_with_its_scheduled_time(
        client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="q", workflow=[stamp, slow],
                        namespace=namespace)
    sched = await client.schedule.create("t", workflow_name="stamp", task_queue="q",
                                         cron="0 0 1 1 *", paused=True)
    wf_id = await sched.trigger()
    assert wf_id is not None and wf_id.startswith("t-")
    result = await client.workflow.get_handle(workflow_id=wf_id).result(timeout=20)
    at = datetime.fromisoformat(result["at"])
    assert wf_id == f"t-{at:%Y-%m-%dT%H:%M:%SZ}" and at.tzinfo is not None
    second = await sched.trigger()  # the same second is taken: the next one
    assert second is not None and second != wf_id
    # skip while a run is open: a trigger does nothing
    busy = await client.schedule.create("busy", workflow_name="slow", task_queue="q",
                                        args=[3], cron="0 0 1 1 *", overlap="skip")
    assert await busy.trigger() is not None
    assert await busy.trigger() is None
    assert (await busy.trigger(overlap="allow_all")) is not None
    desc = await busy.describe()
    assert desc.skipped == 1 and len(desc.running) == 2
    assert [r["status"] for r in desc.recent_runs] == ["running", "running"]


async def test_backfill_over_a_past_range(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="q", workflow=[stamp], namespace=namespace)
    sched = await client.schedule.create("b", workflow_name="stamp", task_queue="q",
                                         cron="0 * * * *", overlap="allow_all")
    start = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    started = await sched.backfill(start, start + timedelta(hours=4))
    assert started == [f"b-2026-01-05T0{h}:00:00Z" for h in range(3, 7)]
    results = [await client.workflow.get_handle(workflow_id=i).result(timeout=20)
               for i in started]
    assert [r["at"] for r in results] == [
        (start + timedelta(hours=h)).isoformat() for h in range(4)]
    assert await sched.backfill(start, start + timedelta(hours=4)) == []  # each tick once
    desc = await sched.describe()
    assert [r["workflow_id"] for r in desc.recent_runs] == started
    assert all(r["status"] == "completed" for r in desc.recent_runs)
    # with buffer_all they queue and run one after another
    assert await sched.backfill(start - timedelta(hours=2), start,
                                overlap="buffer_all") == ["b-2026-01-05T01:00:00Z"]
    await eventually(lambda: _runs(namespace, "b", 6), timeout=20)


async def test_ticks_missed_beyond_the_catchup_window_are_skipped_and_counted(
        client: Client, dsn: str, namespace: str) -> None:
    sched = await client.schedule.create("c", workflow_name="stamp", task_queue="q",
                                         every="1 second", catchup_window="3 seconds",
                                         overlap="allow_all")
    # as if no worker had run for the last 10 seconds
    await sql(f'UPDATE "{namespace}".schedules SET next_at = date_trunc(\'second\', now()) '
              "- interval '10 seconds', fire_at = date_trunc('second', now()) "
              "- interval '10 seconds'")
    await Worker.create(connection=dsn, task_queue="q", workflow=[stamp], namespace=namespace)
    await eventually(lambda: _runs(namespace, "c", 4), timeout=20)
    desc = await sched.describe()
    assert 6 <= desc.missed <= 11, desc.missed
    ids = await _run_ids(namespace, "c")
    first = datetime.strptime(ids[0][-20:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (desc.created_at - first).total_seconds() < 5  # the old ones never started


def test_spec_rules_without_a_database() -> None:
    spec = parse_spec(cron=None, every="15 minutes", timezone=None, start_at=None, end_at=None,
                      jitter="10s", catchup_window=None)
    after = datetime(2027, 1, 1, 0, 7, tzinfo=UTC)
    assert spec.next_after(after) == datetime(2027, 1, 1, 0, 15, tzinfo=UTC)
    jitters = {spec.jitter_of("x", after + timedelta(minutes=15 * i)) for i in range(20)}
    assert all(0 <= j < 10 for j in jitters) and len(jitters) == 20
    assert spec.jitter_of("x", after) == spec.jitter_of("x", after)  # the same on every worker
    ended = parse_spec(cron="* * * * *", every=None, timezone="UTC", start_at=None,
                       end_at=datetime(2020, 1, 1, tzinfo=UTC), jitter=None,
                       catchup_window=None)
    assert ended.next_after(datetime(2027, 1, 1, tzinfo=UTC)) is None
    # after the first 01:30 of a fall-back night, the second one is not a tick
    fall = parse_spec(cron="30 1 * * *", every=None, timezone="America/New_York",
                      start_at=None, end_at=None, jitter=None, catchup_window=None)
    second_hour = datetime(2027, 11, 7, 1, 15, tzinfo=NY, fold=1)
    assert fall.next_after(second_hour) == datetime(2027, 11, 8, 1, 30, tzinfo=NY)
    assert fall.next_after(datetime(2027, 11, 7, 1, 30, tzinfo=NY)) == datetime(
        2027, 11, 8, 1, 30, tzinfo=NY)


async def _run_ids(namespace: str, schedule_id: str) -> list[str]:
    rows = await sql(f'SELECT workflow_id FROM "{namespace}".schedule_runs '
                     "WHERE schedule_id = %s ORDER BY scheduled_at", schedule_id)
    return [r[0] for r in rows]


async def _runs(namespace: str, schedule_id: str, n: int) -> bool:
    rows = await sql(f'''SELECT count(*) FROM "{namespace}".schedule_runs r
  JOIN "{namespace}".workflows w USING (workflow_id)
 WHERE r.schedule_id = %s AND w.status = 'completed' ''', schedule_id)
    return int(rows[0][0]) >= n


async def test_a_broken_schedule_is_paused_and_the_others_go_on(
        client: Client, dsn: str, namespace: str) -> None:
    good = await client.schedule.create("good", workflow_name="stamp", task_queue="q",
                                        every="1 second", jitter="300ms")
    await client.schedule.create("broken", workflow_name="stamp", task_queue="q",
                                 every="1 second")
    rows = await sql(f'SELECT extract(epoch FROM fire_at - next_at) FROM "{namespace}".schedules '
                     "WHERE schedule_id = 'good'")
    assert 0 <= float(rows[0][0]) < 0.3  # the tick's jitter delays its start, not its time
    await sql(f'''UPDATE "{namespace}".schedules
                  SET spec = jsonb_set(spec, '{{cron}}', '["not cron"]')
                WHERE schedule_id = 'broken' ''')
    await Worker.create(connection=dsn, task_queue="q", workflow=[stamp], namespace=namespace)
    await eventually(lambda: _runs(namespace, "good", 2), timeout=20)
    broken = await client.schedule.get_handle("broken").describe()
    assert broken.paused and broken.note and "paused by the scheduler" in broken.note
    assert not (await good.describe()).paused


async def test_scheduled_runs_keep_their_retry_config(
        client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="q", workflow=[flaky], namespace=namespace)
    sched = await client.schedule.create(
        "retry", workflow_name="flaky", task_queue="q", cron="0 0 1 1 *",
        config={"maximum_attempts": 2, "initial_interval": 0.1, "backoff_coefficient": 1})
    wf_id = await sched.trigger()
    assert wf_id is not None
    assert await client.workflow.get_handle(workflow_id=wf_id).result(timeout=20) == (
        "ok on attempt 2")
