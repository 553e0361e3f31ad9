"""History documents and the offline replayer: fetch_history() round-trips through JSON, the
Replayer needs no database and raises NonDeterminismError at the first divergence, and the CLI
(memflow history / memflow replay) does the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memflow import Client, WorkflowHandle
from memflow.errors import NonDeterminismError
from memflow.testing import Replayer
from tests import deploy_worker as dw
from tests.support import eventually, sql
from tests.test_cli import cli


async def _finished_run(client: Client, dsn: str, namespace: str, version: str,
                        x: int) -> WorkflowHandle:
    await sql(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
    await sql(f'CREATE TABLE IF NOT EXISTS "{namespace}".exec_log (name text NOT NULL)')
    worker = await dw.start_worker(dsn, namespace, version)
    h = await client.workflow.start(args=[x], task_queue="deploy", workflow_name="order")

    async def waiting() -> bool:
        return any(s["kind"] == "wait" for s in (await h.export())["timeline"])
    await eventually(waiting, timeout=15)
    await client.workflow.signal(f"go-{x}", None)
    await h.result(timeout=20)
    await worker.stop()
    return h


async def test_a_history_round_trips_and_replays_offline(client: Client, dsn: str,
                                                         namespace: str) -> None:
    h = await _finished_run(client, dsn, namespace, "v1", 5)
    history = await h.fetch_history()
    assert history == json.loads(json.dumps(history))
    assert history["format"] == "memflow-history/1"
    assert (history["workflow_id"], history["run_id"]) == (h.workflow_id, h.run_id)
    assert (history["workflow_name"], history["args"], history["status"]) == (
        "order", [5], "completed")
    steps = history["steps"]
    assert [(s["index"], s["kind"], s["name"], s["seq"]) for s in steps] == [
        (0, "activity", "charge", 1), (1, "wait", "go-5", 2), (2, "activity", "ship", 3)]
    assert steps[0]["result"] == "charged 5" and steps[0]["dimension"] == ""
    assert all(s["created_at"] and s["completed_at"] for s in steps)

    result = await Replayer(workflows={"order": dw.order_v1}).replay(history)
    assert (result.workflow_id, result.error, result.threads) == (h.workflow_id, None, [""])
    await Replayer({"order": dw.order_v2_patched}).replay(json.dumps(history))  # no marker

    with pytest.raises(NonDeterminismError, match="step 0 was activity 'charge'") as caught:
        await Replayer({"order": dw.order_v2_renamed}).replay(history)
    assert caught.value.requested == {"kind": "activity", "name": "reserve"}
    with pytest.raises(NonDeterminismError, match="step 1") as caught:
        await Replayer({"order": dw.order_v2_timer}).replay(history)
    assert caught.value.requested == {"kind": "sleep", "name": None}
    with pytest.raises(NonDeterminismError, match="no longer reaches") as caught:
        await Replayer({"order": dw.order_v2_short}).replay(history)
    assert caught.value.step == 1 and caught.value.requested is None


async def test_patched_histories_and_replay_many(client: Client, dsn: str,
                                                 namespace: str) -> None:
    old = await (await _finished_run(client, dsn, namespace, "v1", 1)).fetch_history()
    new = await (await _finished_run(client, dsn, namespace, "v2_patched", 2)).fetch_history()
    assert [s["kind"] for s in new["steps"]] == ["activity", "patch", "activity", "wait",
                                                 "activity"]
    patched = Replayer({"order": dw.order_v2_patched})
    assert [r.error for r in await patched.replay_many([old, new])] == [None, None]
    # step 2 replays the new history only; the old one never got the receipt
    deprecated = Replayer({"order": dw.order_v3_deprecated})
    await deprecated.replay(new)
    results = await deprecated.replay_many([old, new], raise_on_failure=False)
    assert isinstance(results[0].error, NonDeterminismError) and results[1].error is None
    with pytest.raises(NonDeterminismError):
        await deprecated.replay_many([new, old])
    # v1 skips the marker but then finds the receipt where it waits
    with pytest.raises(NonDeterminismError, match="step 2 was activity 'receipt'"):
        await Replayer({"order": dw.order_v1}).replay(new)


async def test_bad_documents_are_refused() -> None:
    replayer = Replayer([dw.order_v1])
    with pytest.raises(ValueError, match="memflow-history/1"):
        await replayer.replay({"format": "other"})
    doc: dict[str, Any] = {"format": "memflow-history/1", "workflow_id": "w", "run_id": "r",
                           "workflow_name": "order", "steps": []}
    with pytest.raises(ValueError, match="was not given"):
        await replayer.replay(doc)
    with pytest.raises(TypeError, match="async def"):
        Replayer([print])


async def test_memflow_history_and_replay(client: Client, dsn: str, namespace: str,
                                          tmp_path: Path) -> None:
    h = await _finished_run(client, dsn, namespace, "v1", 9)
    got = await cli("history", h.workflow_id, "--namespace", namespace)
    assert got.code == 0, got.err
    assert json.loads(got.out) == await h.fetch_history()
    saved = tmp_path / "h.json"
    saved.write_text(got.out)
    ok = await cli("replay", str(saved), "--workflow", "tests.deploy_worker:V1")
    assert ok.code == 0, ok.err
    assert "ok" in ok.out
    bad = await cli("replay", str(saved), "--workflow", "tests.deploy_worker:V2_RENAMED")
    assert bad.code == 1
    assert "NonDeterminismError" in bad.err and "step 0 was activity 'charge'" in bad.err
    missing = await cli("history", "no-such-id", "--namespace", namespace)
    assert missing.code == 1 and "not found" in missing.err.lower()
