"""``memflow queue configure|describe|list`` driven as a user would: subprocesses against a
real Postgres."""

from __future__ import annotations

import json

from tests.test_cli import cli


async def test_queue_commands(namespace: str) -> None:
    ns = ["-n", namespace]
    made = await cli("queue", "configure", "orders", "--concurrency", "5", "--rate-limit",
                     "100/1 minute", *ns)
    assert made.code == 0, made.err
    assert made.out.strip() == "queue orders: concurrency 5, 100 per 1m"
    keyed = await cli("queue", "configure", "payment-activity", "--per-key-concurrency", "1",
                      "--json", *ns)
    assert json.loads(keyed.out)["limits"] == {"concurrency": None, "per_key_concurrency": 1,
                                               "rate_limit": None}
    shown = await cli("queue", "describe", "orders", *ns)
    assert shown.lines[0] == "orders" and "concurrency 5, 100 per 1m" in shown.out
    desc = json.loads((await cli("queue", "describe", "orders", "--json", *ns)).out)
    assert desc["limits"]["rate_limit"] == [100, 60.0] and desc["running"] == 0
    listed = await cli("queue", "list", *ns)
    assert listed.lines[0].split()[:3] == ["QUEUE", "LIMITS", "RUNNING"]
    assert [line.split()[0] for line in listed.lines[1:]] == ["orders", "payment-activity"]
    as_json = json.loads((await cli("queue", "list", "--json", *ns)).out)
    assert [d["task_queue"] for d in as_json] == ["orders", "payment-activity"]

    bad = await cli("queue", "configure", "orders", "--concurrency", "0", *ns)
    assert bad.code == 1 and "concurrency must be at least 1" in bad.err
    assert json.loads((await cli("queue", "describe", "orders", "--json", *ns)).out
                      )["limits"]["concurrency"] == 5  # nothing changed
    usage = await cli("queue", "configure", "orders", "--rate-limit", "x/1 minute", *ns)
    assert usage.code == 2
    period = await cli("queue", "configure", "orders", "--rate-limit", "5/1 fortnight", *ns)
    assert period.code == 1 and "rate_limit period" in period.err
    cleared = await cli("queue", "configure", "orders", *ns)
    assert cleared.out.strip() == "queue orders: no limits"
