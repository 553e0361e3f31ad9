"""``memflow query`` and ``memflow update`` against a ``memflow worker`` serving the example."""

from __future__ import annotations

import json

from tests.test_cli import cli, one_error_line, worker_process

ORDER = "examples/order_messages.py:WORKFLOWS"


async def test_query_and_update_commands(namespace: str) -> None:
    ns = ["--namespace", namespace]
    async with worker_process(ORDER, "-q", "orders", *ns):
        r = await cli("start", "order", "-q", "orders", "--arg", '"Bea"', "--id", "o1", *ns)
        assert r.code == 0, r.err
        r = await cli("query", "o1", "status", *ns)
        assert (r.code, json.loads(r.out)) == (0, {"customer": "Bea", "stage": "open",
                                                   "items": 0, "total": 0}), r.err
        r = await cli("update", "o1", "add_item", "widget", "2", *ns)
        assert r.code == 0, r.err
        assert json.loads(r.out)["total"] == 5.0
        r = await cli("update", "o1", "add_item", '"gadget"', "1", "--no-wait",
                      "--update-id", "u-gadget", *ns)
        assert (r.code, r.out.strip()) == (0, "u-gadget"), r.err
        r = await cli("update", "o1", "add_item", "gadget", "1", "--update-id", "u-gadget",
                      *ns)
        assert (r.code, json.loads(r.out)["total"]) == (0, 15.0), r.err
        r = await cli("update", "o1", "add_item", "unicorn", "1", *ns)
        assert r.code == 1
        assert one_error_line(r) == ("error: update 'add_item' was rejected: "
                                     "we do not sell 'unicorn'")
        r = await cli("query", "o1", "nope", *ns)
        assert r.code == 1 and "has no query handler 'nope'" in one_error_line(r)
        r = await cli("update", "o1", "checkout", *ns)
        assert (r.code, json.loads(r.out)["stage"]) == (0, "checked out"), r.err
        r = await cli("result", "o1", "--timeout", "20s", *ns)
        assert r.code == 0 and json.loads(r.out)["items"] == 2, r.err
        r = await cli("update", "o1", "add_item", "widget", "1", *ns)
        assert r.code == 1 and "is not running" in one_error_line(r)
    r = await cli("query", "o1", "status", "--timeout", "0.5s", *ns)
    assert r.code == 1 and "no worker answered query 'status'" in one_error_line(r)
