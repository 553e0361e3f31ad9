"""workflow.now() and workflow.guid() are deterministic: the same on replay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import memflow
from memflow import Worker, workflow


async def hn_clock() -> dict:
    t1 = workflow.now()
    again = workflow.now()  # same pass: same value, no new step
    g1 = workflow.guid()
    search = await workflow.search()
    await search.set({"t1": t1.isoformat(), "g1": g1})  # what the first pass saw
    await workflow.sleep_for(0.2)
    t2 = workflow.now()
    g2 = workflow.guid()
    await workflow.sleep_for(0.01)
    return {"t1": t1.isoformat(), "same": again == t1, "g1": g1, "t2": t2.isoformat(),
            "g2": g2, "utc": t1.tzinfo is not None and t1.utcoffset().total_seconds() == 0,
            "replay_seen": await search.get("t1"), "g1_seen": await search.get("g1")}


@pytest.mark.parametrize("cache_size", [0, 512])
async def test_now_and_guid_are_the_same_on_replay(client, dsn, namespace, cache_size):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hn",
                        workflow=[hn_clock], options={"cache_size": cache_size})
    before = datetime.now(UTC)
    h = await client.workflow.start(args=[], task_queue="hn", workflow_name="hn_clock")
    out = await h.result(timeout=30)
    assert out["utc"] and out["same"]
    # the last pass replayed the first: it saw the first pass's time and id again
    assert out["t1"] == out["replay_seen"] and out["g1"] == out["g1_seen"]
    t1, t2 = datetime.fromisoformat(out["t1"]), datetime.fromisoformat(out["t2"])
    assert before <= t1 < t2 and (t2 - t1).total_seconds() >= 0.2
    assert out["g1"] != out["g2"] and out["g1"].startswith("H") and len(out["g1"]) == 33
    kinds = [s["kind"] for s in (await h.export())["timeline"]]
    assert kinds.count("now") == 2  # one per pass that asked


def test_guid_outside_workflows_is_random():
    assert memflow.guid() != memflow.guid()
    with pytest.raises(RuntimeError, match="inside a workflow"):
        workflow.guid()
    with pytest.raises(RuntimeError, match="inside a workflow"):
        workflow.now()
