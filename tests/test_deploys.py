"""Safe deploys: a replay that diverges from the history fails the pass, not the workflow
(the run stays running with the error shown, a rollback lets it finish, no step runs twice),
and workflow.patched()/deprecate_patch() change code without diverging."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from memflow import Client, WorkflowHandle
from memflow.errors import MemFlowFatalError, NonDeterminismError
from tests.deploy_worker import start_worker
from tests.support import eventually, kill, spawn_ready, sql
from tests.test_cli import cli


async def _log_table(namespace: str) -> None:
    await sql(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
    await sql(f'CREATE TABLE "{namespace}".exec_log (name text NOT NULL)')


async def counts(namespace: str) -> dict[str, int]:
    """How often each activity ran (every process)."""
    rows = await sql(f'SELECT name, count(*) FROM "{namespace}".exec_log GROUP BY name')
    return {name: int(n) for name, n in rows}


async def _waiting(h: WorkflowHandle, namespace: str) -> None:
    async def waits() -> bool:
        rows = await sql(f'SELECT count(*) FROM "{namespace}".steps WHERE kind = %s', "wait")
        return rows[0][0] == 1
    await eventually(waits, timeout=15)


async def _diverged(h: WorkflowHandle) -> dict[str, Any]:
    async def shown() -> Any:
        d = await h.describe()
        err = d.error or {}
        return err if err.get("type") == "NonDeterminismError" else None
    err: dict[str, Any] = await eventually(shown, timeout=15)
    assert (await h.describe()).status == "running"
    return err


@pytest.mark.parametrize(("bad", "step", "recorded", "requested"), [
    ("v2_renamed", 0, {"kind": "activity", "name": "charge"},
     {"kind": "activity", "name": "reserve"}),
    ("v2_timer", 1, {"kind": "wait", "name": "go-7"}, {"kind": "sleep", "name": None}),
    ("v2_short", 1, {"kind": "wait", "name": "go-7"}, None),
])
async def test_a_bad_deploy_fails_the_pass_and_a_rollback_finishes_the_run(
        client: Client, dsn: str, namespace: str, bad: str, step: int,
        recorded: dict[str, Any], requested: dict[str, Any] | None) -> None:
    await _log_table(namespace)
    worker = await start_worker(dsn, namespace, "v1", cache_size=0)
    h = await client.workflow.start(args=[7], task_queue="deploy", workflow_name="order")
    await _waiting(h, namespace)
    await worker.stop()

    worker = await start_worker(dsn, namespace, bad)  # the bad deploy
    await client.workflow.signal("go-7", None)
    err = await _diverged(h)
    assert (err["step"], err["recorded"], err["requested"]) == (step, recorded, requested)
    assert f"step {step}" in err["message"]
    failures = await sql(f'SELECT failures FROM "{namespace}".tasks WHERE kind = %s', "w")
    assert failures and failures[0][0] >= 1
    await worker.stop()

    worker = await start_worker(dsn, namespace, "v1")  # the rollback
    assert await h.result(timeout=30) == ["charged 7", "shipped 7"]
    assert await counts(namespace) == {"charge": 1, "ship": 1}
    assert (await h.describe()).error is None


async def test_on_nondeterminism_fail_fails_the_workflow(client: Client, dsn: str,
                                                        namespace: str) -> None:
    await _log_table(namespace)
    worker = await start_worker(dsn, namespace, "v1")
    h = await client.workflow.start(args=[7], task_queue="deploy", workflow_name="order")
    await _waiting(h, namespace)
    await worker.stop()
    await start_worker(dsn, namespace, "v2_renamed", on_nondeterminism="fail")
    await client.workflow.signal("go-7", None)
    with pytest.raises(NonDeterminismError, match="step 0") as caught:
        await h.result(timeout=20)
    assert isinstance(caught.value, MemFlowFatalError)
    assert caught.value.recorded == {"kind": "activity", "name": "charge"}
    assert (await h.describe()).status == "failed"
    assert await counts(namespace) == {"charge": 1}


async def test_a_bad_option_value_is_refused(dsn: str, namespace: str) -> None:
    with pytest.raises(ValueError, match="on_nondeterminism"):
        await start_worker(dsn, namespace, "v1", on_nondeterminism="ignore")


async def test_a_patched_deploy_replays_old_histories_and_runs_the_new_code(
        client: Client, dsn: str, namespace: str) -> None:
    await _log_table(namespace)
    worker = await start_worker(dsn, namespace, "v1", cache_size=0)
    old = await client.workflow.start(args=[1], task_queue="deploy", workflow_name="order")
    await _waiting(old, namespace)
    await worker.stop()

    worker = await start_worker(dsn, namespace, "v2_patched", cache_size=0)
    new = await client.workflow.start(args=[2], task_queue="deploy", workflow_name="order")
    await eventually(lambda: _steps_of(new, "wait"), timeout=15)
    await client.workflow.signal("go-1", None)
    assert await old.result(timeout=20) == ["charged 1", "shipped 1"]  # no shift: ship at 2
    assert await _kinds(old) == ["activity", "wait", "activity"]
    await worker.stop()

    # step 2 of the life cycle replays the patched history (marker, receipt) as well
    await start_worker(dsn, namespace, "v3_deprecated", cache_size=0)
    await client.workflow.signal("go-2", None)
    assert await new.result(timeout=20) == ["charged 2", "receipt 2", "shipped 2"]
    assert await _kinds(new) == ["activity", "patch", "activity", "wait", "activity"]
    assert await counts(namespace) == {"charge": 2, "receipt": 1, "ship": 2}


async def test_deprecate_patch_accepts_histories_without_the_marker(
        client: Client, dsn: str, namespace: str) -> None:
    await _log_table(namespace)
    worker = await start_worker(dsn, namespace, "v1", cache_size=0)
    h = await client.workflow.start(args=[3], task_queue="deploy", workflow_name="order")
    await _waiting(h, namespace)
    await worker.stop()
    # v1's history replays under deprecate_patch as far as it goes: step 1 is the wait, where
    # the new code asks for the receipt, so this one diverges (the patch was needed)
    await start_worker(dsn, namespace, "v3_deprecated")
    await client.workflow.signal("go-3", None)
    err = await _diverged(h)
    assert err["requested"] == {"kind": "activity", "name": "receipt"}


async def _steps_of(h: WorkflowHandle, kind: str) -> bool:
    return kind in await _kinds(h)


async def _kinds(h: WorkflowHandle) -> list[str]:
    exported = await h.export()
    return [s["kind"] for s in exported["timeline"] if s.get("dimension", "") in ("", None)]


async def test_a_bad_deploy_across_worker_processes(client: Client, dsn: str,
                                                    namespace: str) -> None:
    await _log_table(namespace)
    procs: list[subprocess.Popen[str]] = []
    try:
        first = await spawn_ready("tests.deploy_worker", dsn, namespace, "v1", procs=procs)
        h = await client.workflow.start(args=[7], task_queue="deploy", workflow_name="order")
        await _waiting(h, namespace)
        kill(first)
        bad = await spawn_ready("tests.deploy_worker", dsn, namespace, "v2_renamed",
                                procs=procs)
        await client.workflow.signal("go-7", None)
        err = await _diverged(h)
        assert err["recorded"] == {"kind": "activity", "name": "charge"}
        shown = await cli("show", h.workflow_id, "--namespace", namespace)
        assert shown.code == 0, shown.err
        assert "running" in shown.out and "NonDeterminismError" in shown.out
        assert "step 0 was activity 'charge'" in " ".join(shown.out.split())
        kill(bad)
        await spawn_ready("tests.deploy_worker", dsn, namespace, "v1", procs=procs)
        assert await h.result(timeout=30) == ["charged 7", "shipped 7"]
        assert await counts(namespace) == {"charge": 1, "ship": 1}
    finally:
        for p in procs:
            kill(p)
