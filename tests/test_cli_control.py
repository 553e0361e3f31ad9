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
