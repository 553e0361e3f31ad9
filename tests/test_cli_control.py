"""``memflow cancel`` and ``memflow terminate``, and the new statuses in ``show``/``list``."""

from __future__ import annotations

import json

from tests.test_cli import WORKFLOWS, cli, one_error_line, worker_process


async def test_cancel_and_terminate_commands(namespace: str) -> None:
    ns = ["--namespace", namespace]
    async with worker_process(WORKFLOWS, "--task-queue", "cliq", *ns):
        r = await cli("start", "sleeper", "-q", "cliq", "--arg", "600", "--id", "c1", *ns)
        assert r.code == 0, r.err
        r = await cli("cancel", "c1", "--reason", "not needed", *ns)
        assert (r.code, r.out.strip()) == (0, "asked workflow c1 to cancel"), r.err
        r = await cli("result", "c1", "--timeout", "20s", *ns)
        assert r.code == 1
        assert one_error_line(r) == "error: workflow c1 was cancelled: not needed"
        r = await cli("cancel", "c1", *ns)
        assert r.code == 1 and "already cancelled" in one_error_line(r)

        r = await cli("start", "sleeper", "-q", "cliq", "--arg", "600", "--id", "t1", *ns)
        assert r.code == 0, r.err
        r = await cli("terminate", "t1", "--reason", "stop now", *ns)
        assert (r.code, r.out.strip()) == (0, "terminated workflow t1"), r.err
        r = await cli("result", "t1", *ns)
        assert one_error_line(r) == "error: workflow t1 was interrupted: stop now"
        r = await cli("terminate", "t1", *ns)
        assert r.code == 1 and "already interrupted" in one_error_line(r)

    r = await cli("show", "c1", *ns)
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == "c1  cancelled"
    assert "MemFlowCancelledError (499): not needed" in r.out
    r = await cli("list", "--status", "cancelled", "--json", *ns)
    assert [w["workflow_id"] for w in json.loads(r.out)] == ["c1"]
    r = await cli("list", *ns)
    by_id = {row.split()[0]: row.split() for row in r.lines[1:]}
    assert by_id["c1"][3] == "cancelled" and by_id["t1"][3] == "interrupted"


async def test_list_all_runs_shows_the_runs_of_a_chain(namespace: str) -> None:
    """``list`` shows an id's current run; ``--all-runs`` (or ``--status continued``) its
    earlier runs too, each with its run id."""
    ns = ["--namespace", namespace]
    async with worker_process(WORKFLOWS, "--task-queue", "cliq", *ns):
        r = await cli("start", "chained", "-q", "cliq", "--arg", "2", "--id", "ch", *ns)
        assert r.code == 0, r.err
        r = await cli("result", "ch", "--timeout", "20s", *ns)
        assert (r.code, r.out.strip()) == (0, "0"), r.err
    r = await cli("list", "--json", *ns)
    assert [(w["workflow_id"], w["status"]) for w in json.loads(r.out)] == [("ch", "completed")]
    r = await cli("list", "--all-runs", "--json", *ns)
    every = json.loads(r.out)
    assert sorted(w["status"] for w in every) == ["completed", "continued", "continued"]
    assert len({w["run_id"] for w in every}) == 3
    r = await cli("list", "--status", "continued", *ns)
    assert r.code == 0, r.err
    assert r.lines[0].split()[:4] == ["WORKFLOW", "ID", "RUN", "ID"]
    rows = [line.split() for line in r.lines[1:]]
    assert [row[0] for row in rows] == ["ch", "ch"]
    assert {row[1] for row in rows} == {w["run_id"] for w in every if w["status"] == "continued"}
    assert all(row[4] == "continued" for row in rows)
