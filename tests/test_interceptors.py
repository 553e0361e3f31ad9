"""Workflow and activity interceptors: order, errors, context, durable calls, replay, crashes.

Activities log their real executions in ``<namespace>.exec_log`` (see tests/interceptor_app.py),
so the tests can prove that replays never re-run completed steps. ``cache_size=0`` makes every
pass of a workflow a full replay of its history.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import memflow
from memflow import Client, MemFlow, Worker, register_activity_worker, workflow
from memflow.errors import MemFlowFatalError, MemFlowMaxedError
from tests import interceptor_app as app
from tests.support import eventually, sql

ROOT = Path(__file__).resolve().parent.parent
NO_CACHE = {"cache_size": 0}

EVENTS: list[tuple[Any, ...]] = []
CONTEXTS: list[dict[str, Any]] = []


# helpers -----------------------------------------------------------------------------------
@pytest.fixture
async def exec_log(dsn: str, namespace: str, client: Client) -> str:
    """The namespace, with an ``exec_log`` table where activities log each real execution."""
    await client._namespace(namespace)  # creates the schema
    await sql(f'CREATE TABLE "{namespace}".exec_log (name text, arg text, pid int, '
              "at timestamptz DEFAULT clock_timestamp())")
    app.configure(dsn, namespace)
    EVENTS.clear()
    CONTEXTS.clear()
    return namespace


async def executions(ns: str) -> Counter[tuple[str, str]]:
    rows = await sql(f'SELECT name, arg FROM "{ns}".exec_log')
    return Counter((r[0], r[1]) for r in rows)


async def pids(ns: str, name: str, arg: str) -> list[int]:
    rows = await sql(f'SELECT pid FROM "{ns}".exec_log WHERE name = %s AND arg = %s ORDER BY at',
                     name, arg)
    return [r[0] for r in rows]


async def shape(handle: Any) -> list[tuple[Any, ...]]:
    """The timeline as (index, kind, name, status) tuples."""
    timeline = (await handle.export())["timeline"]
    return [(s["index"], s["kind"], s["name"], s["status"]) for s in timeline]


async def spawn(*argv: str, **env: str) -> subprocess.Popen[str]:
    """Start ``python -m tests.interceptor_app ARGV...`` and wait until it is serving."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.interceptor_app", *argv], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == "ready", f"worker process did not start: {line!r}"
    return proc


async def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    await asyncio.to_thread(proc.wait, 15)


async def shared_activity_worker(dsn: str, ns: str) -> None:
    """The seed's shared activity pool, in this process."""
    await register_activity_worker({"connection": dsn, "task_queue": "shared", "namespace": ns},
                                   {"audit_log": app.audit_log}, "shared")


# onion order, context, replay flag -------------------------------------------------------------
class Recorder:
    def __init__(self, name: str):
        self.name = name

    async def execute(self, ctx: Any, next: Any) -> Any:
        if self.name == "A":
            CONTEXTS.append({**ctx, "is_mapping": isinstance(ctx, Mapping),
                             "missing": ctx.get("no-such-key")})
        EVENTS.append((f"{self.name}>", ctx["replay"]))
        result = await next()
        EVENTS.append((f"<{self.name}", ctx["replay"]))
        return f"{self.name}({result})"


async def onion(x: int) -> int:
    EVENTS.append(("wf>", workflow.get_context()["replay"]))
    acts = workflow.proxy_activities(activities=[app.step])
    y = await acts.step(x)
    EVENTS.append(("<wf", workflow.get_context()["replay"]))
    return y


@pytest.mark.parametrize("cache_size", [512, 0])
async def test_onion_order_context_and_replay_flag(dsn: str, exec_log: str, client: Client,
                                                   cache_size: int) -> None:
    ns = exec_log
    MemFlow.register_interceptor(Recorder("A"))
    memflow.register_interceptor(Recorder("B"))
    await Worker.create(connection=dsn, task_queue="onion", workflow=onion, namespace=ns,
                        options={"cache_size": cache_size})
    h = await client.workflow.start(args=[4], task_queue="onion", workflow_name="onion",
                                    workflow_id="onion-1", config={"maximum_attempts": 2})
    assert await h.result(timeout=20) == "A(B(40))"  # first registered is the outermost

    live = [("A>", False), ("B>", False), ("wf>", False)]
    end = [("<wf", False), ("<B", False), ("<A", False)]
    if cache_size:  # the blocked workflow resumed from the sticky cache: no replay
        assert EVENTS == live + end
    else:  # the second pass re-ran the first one from history (replay=True), then went on
        assert EVENTS == [*live, ("A>", True), ("B>", True), ("wf>", True), *end]
    assert await executions(ns) == {("step", "4"): 1}

    ctx = CONTEXTS[0]
    assert ctx["is_mapping"] and ctx["missing"] is None
    assert ctx["workflow_id"] == "onion-1" and ctx["workflow_name"] == "onion"
    assert ctx["task_queue"] == "onion" and ctx["namespace"] == ns
    assert ctx["can_retry"] is True  # attempt 1 of 2
    assert ctx["replay"] is False
    assert await shape(h) == [(0, "activity", "step", "done")]


class Threads:
    async def execute(self, ctx: Any, next: Any) -> Any:
        if not ctx["replay"]:
            EVENTS.append((ctx["workflow_id"], ctx["workflow_name"], ctx["workflow_dimension"]))
        return await next()


async def hooked(x: int) -> int:
    acts = workflow.proxy_activities(activities=[app.step])
    return await acts.step(x)


async def with_hook(x: int) -> int:
    return await workflow.exec_hook(workflow_name="hooked", args=[x]) + 1


async def test_interceptors_wrap_hook_threads_too(dsn: str, exec_log: str,
                                                  client: Client) -> None:
    memflow.register_interceptor(Threads())
    await Worker.create(connection=dsn, task_queue="hk", workflow=[with_hook, hooked],
                        namespace=exec_log, options=NO_CACHE)
    h = await client.workflow.start(args=[2], task_queue="hk", workflow_name="with_hook",
                                    workflow_id="hk-1")
    assert await h.result(timeout=20) == 21
    assert EVENTS[0] == ("hk-1", "with_hook", "")
    assert len(EVENTS) == 2 and EVENTS[1][:2] == ("hk-1", "hooked") and EVENTS[1][2] != ""


# errors --------------------------------------------------------------------------------------
SEEN: list[tuple[Any, ...]] = []
RAN: list[Any] = []


class Guard:
    """Logs the workflow's error and re-raises it."""

    async def execute(self, ctx: Any, next: Any) -> Any:
        try:
            return await next()
        except Exception as err:
            SEEN.append((ctx["can_retry"], type(err).__name__, str(err)))
            raise


class Broken:
    """Raises before (or after) the workflow runs."""

    def __init__(self, exc: Exception, after: bool = False):
        self.exc, self.after = exc, after

    async def execute(self, ctx: Any, next: Any) -> Any:
        if self.after:
            await next()
        raise self.exc


async def failing() -> None:
    raise ValueError("boom from the workflow")


async def plain(x: int) -> int:
    RAN.append(x)
    return x


async def test_workflow_error_is_seen_by_the_interceptor_and_reraised(
        dsn: str, namespace: str, client: Client) -> None:
    SEEN.clear()
    memflow.register_interceptor(Guard())
    await Worker.create(connection=dsn, task_queue="err", workflow=failing, namespace=namespace)
    h = await client.workflow.start(args=[], task_queue="err", workflow_name="failing",
                                    config={"maximum_attempts": 2, "initial_interval": 0.05})
    with pytest.raises(MemFlowMaxedError) as info:
        await h.result(timeout=20)
    assert info.value.code == 597 and "boom from the workflow" in info.value.message
    # both attempts passed through the interceptor; only the first could still be retried
    assert SEEN == [(True, "ValueError", "boom from the workflow"),
                    (False, "ValueError", "boom from the workflow")]


async def test_interceptor_error_fails_the_workflow(dsn: str, namespace: str,
                                                   client: Client) -> None:
    RAN.clear()
    await Worker.create(connection=dsn, task_queue="err", workflow=plain, namespace=namespace)
    retry = {"maximum_attempts": 2, "initial_interval": 0.05}

    memflow.register_interceptor(Broken(RuntimeError("interceptor broke")))
    h = await client.workflow.start(args=[1], task_queue="err", workflow_name="plain",
                                    config=retry)
    with pytest.raises(MemFlowMaxedError) as maxed:
        await h.result(timeout=20)
    assert maxed.value.code == 597 and "interceptor broke" in maxed.value.message
    assert RAN == []  # it raised before next(): the workflow never ran

    memflow.clear_interceptors()
    memflow.register_interceptor(Broken(MemFlowFatalError("fatal after"), after=True))
    h = await client.workflow.start(args=[2], task_queue="err", workflow_name="plain",
                                    config={"maximum_attempts": 3})
    with pytest.raises(MemFlowFatalError) as fatal:
        await h.result(timeout=20)
    assert fatal.value.code == 598 and "fatal after" in fatal.value.message
    assert RAN == [2]  # not retried: a fatal error ends the workflow at once

    MemFlow.clear_interceptors()
    h = await client.workflow.start(args=[3], task_queue="err", workflow_name="plain")
    assert await h.result(timeout=20) == 3
    assert RAN == [2, 3]


# durable calls inside a workflow interceptor ---------------------------------------------------
class Napper:
    async def execute(self, ctx: Any, next: Any) -> Any:
        slept = await workflow.sleep_for(0.2)
        result = await next()
        ack = await workflow.wait_for(f"ack-{ctx['workflow_id']}")
        return {"result": result, "slept": slept, "ack": ack}


async def napping(x: int) -> int:
    acts = workflow.proxy_activities(activities=[app.step])
    y = await acts.step(x)
    await workflow.sleep_for("0.1s")
    return y


async def test_interceptor_sleeps_and_waits_durably(dsn: str, exec_log: str,
                                                    client: Client) -> None:
    ns = exec_log
    memflow.register_interceptor(Napper())
    await Worker.create(connection=dsn, task_queue="nap", workflow=napping, namespace=ns,
                        options=NO_CACHE)
    began = time.monotonic()
    h = await client.workflow.start(args=[7], task_queue="nap", workflow_name="napping",
                                    workflow_id="nap-1")
    await client.workflow.signal("ack-nap-1", {"ok": True}, namespace=ns)
    assert await h.result(timeout=20) == {"result": 70, "slept": 0.2, "ack": {"ok": True}}
    assert time.monotonic() - began >= 0.3
    assert await shape(h) == [(0, "sleep", None, "done"), (1, "activity", "step", "done"),
                              (2, "sleep", None, "done"), (3, "wait", "ack-nap-1", "done")]
    assert await executions(ns) == {("step", "7"): 1}


# the seed's example: an interceptor auditing on a shared queue served by another process ------
async def process_payment(amount: float) -> str:
    app.record("process_payment", amount)
    return f"Processed ${amount}"


async def order_workflow(amount: float) -> str:
    acts = workflow.proxy_activities(retry_policy={"maximum_attempts": 3})
    return await acts.process_payment(amount)


async def test_seed_interceptor_example_with_shared_queue_in_another_process(
        dsn: str, exec_log: str, client: Client) -> None:
    ns = exec_log
    shared = await spawn("activities", dsn, ns)
    try:
        MemFlow.register_interceptor(app.SeedAudit())
        await Worker.create(connection=dsn, task_queue="orders", workflow=order_workflow,
                            namespace=ns, activities={"process_payment": process_payment},
                            options=NO_CACHE)
        handles = [await client.workflow.start(args=[amount], task_queue="orders",
                                               workflow_name="order_workflow",
                                               workflow_id=f"order-{amount}")
                   for amount in (10, 20)]
        assert [await h.result(timeout=20) for h in handles] == ["Processed $10",
                                                                  "Processed $20"]
    finally:
        await stop(shared)
    for h in handles:
        assert await shape(h) == [(0, "activity", "audit_log", "done"),
                                  (1, "activity", "process_payment", "done")]
    assert await executions(ns) == {
        ("audit_log", "order-10:started"): 1, ("audit_log", "order-20:started"): 1,
        ("process_payment", "10"): 1, ("process_payment", "20"): 1}
    assert await pids(ns, "audit_log", "order-10:started") == [shared.pid]
    assert await pids(ns, "process_payment", "10") == [os.getpid()]


# activity interceptors -------------------------------------------------------------------------
class ActRecorder:
    async def execute(self, activity_ctx: Any, workflow_ctx: Any, next: Any) -> Any:
        name, args = activity_ctx["activity_name"], activity_ctx["args"]
        EVENTS.append(("before", name, args, workflow_ctx["replay"]))
        result = await next()
        EVENTS.append(("after", name, args, result, workflow_ctx["replay"]))
        return result


async def fan(n: int) -> list[int]:
    acts = workflow.proxy_activities(activities=[app.step])
    a = await acts.step(n)
    b, c = await asyncio.gather(acts.step(n + 1), acts.step(n + 2))
    return [a, b, c]


@pytest.mark.parametrize("cache_size", [512, 0])
async def test_activity_interceptors_order_and_their_durable_calls(
        dsn: str, exec_log: str, client: Client, cache_size: int) -> None:
    ns = exec_log
    await shared_activity_worker(dsn, ns)
    memflow.register_interceptor(app.SeedAudit())  # its audit_log call is intercepted too
    memflow.register_activity_interceptor(ActRecorder())       # outermost
    memflow.register_activity_interceptor(app.AuditActivities())  # audits around each call
    await Worker.create(connection=dsn, task_queue="fan", workflow=fan, namespace=ns,
                        options={"cache_size": cache_size})
    h = await client.workflow.start(args=[1], task_queue="fan", workflow_name="fan",
                                    workflow_id="fan-1")
    assert await h.result(timeout=30) == [10, 20, 30]

    started = ["fan-1", "started"]
    live = [e[:-1] for e in EVENTS if e[-1] is False]
    # live, each call is intercepted once: "before" when called, "after" once its result is
    # known; the interceptors' own audit calls are not intercepted again
    assert live[:6] == [("before", "audit_log", started), ("after", "audit_log", started, None),
                        ("before", "step", [1]), ("after", "step", [1], 10),
                        ("before", "step", [2]), ("before", "step", [3])]
    assert sorted(live[6:]) == [("after", "step", [2], 20), ("after", "step", [3], 30)]
    replayed = [e for e in EVENTS if e[-1] is True]
    if cache_size:
        assert replayed == []
    else:  # every pass re-ran the interceptors over the recorded calls
        assert ("before", "audit_log", started, True) in replayed
        assert ("after", "step", [1], 10, True) in replayed

    # each activity, and each audit the interceptors made, really ran exactly once
    assert await executions(ns) == {
        ("step", "1"): 1, ("step", "2"): 1, ("step", "3"): 1,
        ("audit_log", "fan-1:before:audit_log['fan-1', 'started']"): 1,
        ("audit_log", "fan-1:started"): 1,
        ("audit_log", "fan-1:after:audit_log=None"): 1,
        ("audit_log", "fan-1:before:step[1]"): 1, ("audit_log", "fan-1:after:step=10"): 1,
        ("audit_log", "fan-1:before:step[2]"): 1, ("audit_log", "fan-1:after:step=20"): 1,
        ("audit_log", "fan-1:before:step[3]"): 1, ("audit_log", "fan-1:after:step=30"): 1}
    timeline = await shape(h)
    assert [t[:3] for t in timeline[:8]] == [
        (0, "activity", "audit_log"), (1, "activity", "audit_log"), (2, "activity", "audit_log"),
        (3, "activity", "audit_log"), (4, "activity", "step"), (5, "activity", "audit_log"),
        (6, "activity", "audit_log"), (7, "activity", "audit_log")]
    assert len(timeline) == 12 and all(t[3] == "done" for t in timeline)


async def mixed(n: int) -> list[Any]:
    acts = workflow.proxy_activities(activities=[app.step])
    a, _ = await asyncio.gather(acts.step(n), workflow.sleep_for(0.05))
    go = await workflow.wait_for(f"go-{workflow.get_context()['workflow_id']}")
    b, _ = await asyncio.gather(acts.step(n + 1), workflow.sleep_for(0.05))
    return [a, b, go]


async def test_activity_interceptors_take_their_slots_at_the_call(
        dsn: str, exec_log: str, client: Client) -> None:
    ns = exec_log
    await shared_activity_worker(dsn, ns)
    await Worker.create(connection=dsn, task_queue="mixed", workflow=mixed, namespace=ns,
                        options=NO_CACHE)
    plain = [(0, "activity", "step"), (1, "sleep", None), (2, "wait", "go-m1"),
             (3, "activity", "step"), (4, "sleep", None)]

    # A workflow recorded without interceptors, blocked on a signal; then a pass-through
    # activity interceptor is registered: its replay must number every step as before.
    h = await client.workflow.start(args=[1], task_queue="mixed", workflow_name="mixed",
                                    workflow_id="m1")

    async def waiting() -> bool:
        return [t[:3] for t in await shape(h)][:3] == plain[:3]
    await eventually(waiting)
    memflow.register_activity_interceptor(ActRecorder())
    await client.workflow.signal("go-m1", "go", namespace=ns)
    assert await h.result(timeout=20) == [10, 20, "go"]
    assert [t[:3] for t in await shape(h)] == plain
    assert ("before", "step", [1], True) in EVENTS  # the replayed call was intercepted
    assert [e for e in EVENTS if e[-1] is False] == [("before", "step", [2], False),
                                                     ("after", "step", [2], 20, False)]

    # An interceptor's durable calls made before next() are numbered at the activity call,
    # ahead of the calls the workflow makes after it (here: the sleep in the same gather).
    memflow.register_activity_interceptor(app.AuditActivities())
    h = await client.workflow.start(args=[3], task_queue="mixed", workflow_name="mixed",
                                    workflow_id="m2")
    await client.workflow.signal("go-m2", "go", namespace=ns)
    assert await h.result(timeout=20) == [30, 40, "go"]
    assert [t[:3] for t in await shape(h)] == [
        (0, "activity", "audit_log"), (1, "sleep", None), (2, "activity", "step"),
        (3, "activity", "audit_log"), (4, "wait", "go-m2"),
        (5, "activity", "audit_log"), (6, "sleep", None), (7, "activity", "step"),
        (8, "activity", "audit_log")]
    runs = await executions(ns)
    assert runs[("step", "3")] == runs[("step", "4")] == 1
    assert runs[("audit_log", "m2:before:step[3]")] == runs[("audit_log", "m2:after:step=40")] == 1


# crash and resume on another worker ------------------------------------------------------------
async def test_resume_after_crash_numbers_steps_like_an_uncrashed_run(
        dsn: str, exec_log: str, client: Client) -> None:
    ns = exec_log
    await shared_activity_worker(dsn, ns)

    # the reference: an uncrashed run (sticky cache on)
    ref_worker = await spawn("worker", dsn, ns)
    try:
        ref = await client.workflow.start(args=[1], task_queue="icpt", workflow_name="journey",
                                          workflow_id="ref")
        await client.workflow.signal("go-ref", "go", namespace=ns)
        assert await ref.result(timeout=30) == {"a": 10, "b": 100, "c": 20, "go": "go"}
    finally:
        await stop(ref_worker)
    expected = await shape(ref)

    # the same workflow, its worker killed inside the slow activity; another one resumes it
    # with no cache at all (every pass a full replay, interceptors included)
    first = await spawn("worker", dsn, ns, HANG_SLOW="1")
    second = None
    try:
        h = await client.workflow.start(args=[5], task_queue="icpt", workflow_name="journey",
                                        workflow_id="crash")
        await client.workflow.signal("go-crash", "go", namespace=ns)

        async def slow_started() -> bool:
            return bool(await pids(ns, "slow", "5"))
        await eventually(slow_started, timeout=20)
        await stop(first, signal.SIGKILL)
        second = await spawn("worker", dsn, ns, "0")
        assert await h.result(timeout=30) == {"a": 50, "b": 500, "c": 60, "go": "go"}
    finally:
        await stop(first, signal.SIGKILL)
        if second is not None:
            await stop(second)

    assert normalized(await shape(h)) == normalized(expected)
    assert [t[:3] for t in normalized(expected)] == [
        (0, "activity", "audit_log"), (1, "activity", "audit_log"), (2, "activity", "audit_log"),
        (3, "sleep", None),
        (4, "activity", "audit_log"), (5, "activity", "step"), (6, "activity", "audit_log"),
        (7, "activity", "audit_log"), (8, "activity", "slow"), (9, "activity", "audit_log"),
        (10, "wait", "go-<id>"),
        (11, "activity", "audit_log"), (12, "activity", "step"), (13, "activity", "audit_log"),
        (14, "activity", "audit_log"), (15, "activity", "audit_log"),
        (16, "activity", "audit_log")]
    runs = await executions(ns)
    crash = Counter({k: v for k, v in runs.items()
                     if (k[0] != "audit_log" and k[1] in ("5", "6"))
                     or k[1].startswith("crash:")})
    # the slow attempt that died never committed, so it ran again, on the second worker;
    # everything that had completed (activities and the interceptors' audits) ran exactly once
    assert await pids(ns, "slow", "5") == [first.pid, second.pid]
    assert crash == {
        ("step", "5"): 1, ("slow", "5"): 2, ("step", "6"): 1,
        ("audit_log", "crash:before:audit_log['crash', 'started']"): 1,
        ("audit_log", "crash:started"): 1,
        ("audit_log", "crash:after:audit_log=None"): 2,  # after "started" and after "finished"
        ("audit_log", "crash:before:step[5]"): 1, ("audit_log", "crash:after:step=50"): 1,
        ("audit_log", "crash:before:slow[5]"): 1, ("audit_log", "crash:after:slow=500"): 1,
        ("audit_log", "crash:before:step[6]"): 1, ("audit_log", "crash:after:step=60"): 1,
        ("audit_log", "crash:before:audit_log['crash', 'finished']"): 1,
        ("audit_log", "crash:finished"): 1}


def normalized(timeline: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A timeline with the workflow's own id taken out of signal names."""
    return [(i, kind, "go-<id>" if kind == "wait" else name, status)
            for i, kind, name, status in timeline]


# the registration API --------------------------------------------------------------------------
def test_registration_api_is_synchronous_and_clear_removes_both_kinds() -> None:
    from memflow import registry

    assert MemFlow.register_interceptor is memflow.register_interceptor
    assert MemFlow.register_activity_interceptor is memflow.register_activity_interceptor
    assert MemFlow.clear_interceptors is memflow.clear_interceptors
    try:
        assert memflow.register_interceptor(Recorder("A")) is None
        memflow.register_interceptor({"execute": Recorder("B").execute})
        assert memflow.register_activity_interceptor(ActRecorder()) is None
        assert len(registry.interceptors()) == 2 and len(registry.activity_interceptors()) == 1
        with pytest.raises(TypeError):
            memflow.register_interceptor(object())
        with pytest.raises(TypeError):
            memflow.register_activity_interceptor({"run": print})
        assert memflow.clear_interceptors() is None
        assert registry.interceptors() == [] and registry.activity_interceptors() == []
    finally:
        memflow.clear_interceptors()
