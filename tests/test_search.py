"""Search fields: every method in real workflows, replay safety, concurrency, and finding
workflows with ``client.workflow.search`` (structured and SQL forms), injection included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from memflow import Client, Search, Worker, workflow
from memflow.errors import MemFlowFatalError
from memflow.store.sql_search import VIEW_COLUMNS, dollar_placeholders
from memflow.workflow.search import search_call
from tests.support import sql
from tests.test_entity import Driver, failed, ok


async def search_tour() -> dict[str, Any]:
    s = await workflow.search()
    out: dict[str, Any] = {}
    out["set_dict"] = await s.set({"name": "Ann", "count": 5, "flag": True})
    out["set_pairs"] = await s.set("city", "Oslo", "name", "Bea")
    out["get"] = await s.get("name")
    out["get_number"] = await s.get("count")
    out["get_missing"] = await s.get("nope")
    out["get_initial"] = await s.get("origin")
    out["mget"] = await s.mget("name", "nope", "flag")
    out["incr"] = await s.incr("count", 2)
    out["incr_new"] = await s.incr("visits", 1.5)
    out["incr_default"] = await s.incr("visits")
    out["mult_new"] = await s.mult("price", 3)
    out["mult"] = await s.mult("price", 0.1)
    out["mult_exact"] = await s.mult("ratio", 1.1) and await s.mult("ratio", 1.1)
    out["delete"] = await s.delete("city", "nope", "city")
    out["enrich"] = await workflow.enrich({"stage": "done", "n": 1})
    out["after"] = await s.mget("city", "count", "visits", "price", "ratio", "stage", "n")
    return out


async def test_every_search_method_in_a_workflow(client: Client, dsn: str,
                                                 namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="srch", workflow=search_tour,
                        namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="srch",
                                         workflow_name=search_tour,
                                         search={"data": {"origin": "seed"}})
    out = await handle.result(timeout=20)
    assert out["set_dict"] == 3 and out["set_pairs"] == 1  # how many fields are new
    assert out["get"] == "Bea" and out["get_number"] == "5"  # stored as text
    assert out["get_missing"] is None and out["get_initial"] == "seed"
    assert out["mget"] == ["Bea", None, "true"]
    assert out["incr"] == 7 and out["incr_new"] == 1.5 and out["incr_default"] == 2.5
    assert out["mult_new"] == 3 and out["mult"] == 0.3  # 3 * 0.1 in floats: 0.30000000000000004
    assert out["mult_exact"] == 1.21  # 1.1 * 1.1 in floats: 1.2100000000000002
    assert out["delete"] == 1 and out["enrich"] is True
    assert out["after"] == [None, "7", "2.5", "0.3", "1.21", "done", "1"]
    assert await handle.query_state(["count", "origin", "price", "nope"]) == {
        "count": "7", "origin": "seed", "price": "0.3", "nope": None}
    exported = await handle.export()
    assert exported["data"] == {
        "origin": "seed", "name": "Bea", "count": "7", "flag": "true", "visits": "2.5",
        "price": "0.3", "ratio": "1.21", "stage": "done", "n": "1"}
    names = [(s["kind"], s["name"]) for s in exported["timeline"]]
    assert len(names) == 17 and {k for k, _ in names} == {"search"}  # search() takes no step
    assert names[-2] == ("search", "enrich")
    ids = await client.workflow.search("srch", "search_tour", None, query={"stage": "done"})
    assert ids == [handle.workflow_id]


async def search_misuse() -> dict[str, Any]:
    s = await workflow.search()
    await s.set({"name": "Ann", "nan": "NaN", "inf": "Infinity", "padded": " 12 ",
                 "huge": "9e306", "e": "1e5", "long": "1e10000"})
    out: dict[str, Any] = {}
    for label, call in [
        ("incr text", lambda: s.incr("name", 1)),
        ("mult text", lambda: s.mult("name", 2)),
        ("incr NaN", lambda: s.incr("nan", 1)),
        ("incr Infinity", lambda: s.incr("inf", 1)),
        ("incr padded", lambda: s.incr("padded", 1)),
        ("incr exponent", lambda: s.incr("e", 1)),
        ("mult huge", lambda: s.mult("huge", 10)),
        ("mult huger", lambda: s.mult("huge", 10)),
        ("long exponent", lambda: s.incr("long", 1)),
        ("many decimals", lambda: s.mult("small", 1e-300)),
        ("too many decimals", lambda: s.mult("small", 1e-200)),
    ]:
        try:
            out[label] = str(await call())  # text: a result may exceed 64-bit JSON integers
        except MemFlowFatalError as err:
            out[label] = err.message
    for label, bad in [
        ("odd pairs", lambda: s.set("a")),
        ("no fields", lambda: s.set()),
        ("key not text", lambda: s.set(1, 2)),
        ("empty key", lambda: s.get("")),
        ("by as text", lambda: s.incr("a", "1")),  # type: ignore[arg-type]
        ("by infinite", lambda: s.mult("a", float("inf"))),
        ("mget nothing", lambda: s.mget()),
        ("NUL value", lambda: s.set({"a": "x\x00"})),
        ("enrich a list", lambda: workflow.enrich([1])),  # type: ignore[arg-type]
    ]:
        try:
            bad()
            out[label] = "no error"
        except (TypeError, ValueError) as err:
            out[label] = type(err).__name__
    out["after"] = await s.mget("name", "nan", "padded", "e", "huge")
    return out


async def test_search_calls_that_do_not_fit_fail_cleanly(client: Client, dsn: str,
                                                         namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="mis", workflow=search_misuse,
                        namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="mis", workflow_name=search_misuse)
    out = await handle.result(timeout=20)
    for label in ("incr text", "mult text", "incr NaN", "incr Infinity", "mult huger",
                  "long exponent", "too many decimals"):
        assert "does not hold a number, or the result is out of range" in out[label], label
    assert out["incr text"].startswith("search.incr('name'): ")
    assert out["incr padded"] == "13" and out["incr exponent"] == "100001"
    assert float(out["mult huge"]) == 9e307 and out["many decimals"] == "1e-300"
    assert {out[k] for k in ("odd pairs", "no fields", "key not text", "by as text",
                             "mget nothing", "enrich a list")} == {"TypeError"}
    assert {out[k] for k in ("empty key", "by infinite", "NUL value")} == {"ValueError"}
    assert out["after"] == ["Ann", "NaN", "13", "100001", str(9 * 10**307)]  # exact text


async def test_outside_a_workflow_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="inside a workflow"):
        await workflow.search()
    with pytest.raises(RuntimeError, match="inside a workflow"):
        Search().incr("a", 1)
    with pytest.raises(RuntimeError, match="inside a workflow"):
        workflow.enrich({"a": 1})


async def tally(n: int) -> list[Any]:
    s = await workflow.search()
    seen = []
    for _ in range(n):
        seen.append(await s.incr("count", 1))
        seen.append(await s.mult("product", 2))
        await workflow.sleep_for(0.01)  # ends the pass: the next one replays from history
    return seen


async def test_search_results_are_stable_when_every_pass_replays(client: Client, dsn: str,
                                                                 namespace: str) -> None:
    for _ in range(2):
        await Worker.create(connection=dsn, task_queue="tal", workflow=tally,
                            namespace=namespace, options={"cache_size": 0})
    handle = await client.workflow.start(args=[5], task_queue="tal", workflow_name=tally)
    assert await handle.result(timeout=30) == [1, 2, 2, 4, 3, 8, 4, 16, 5, 32]
    assert await handle.query_state(["count", "product"]) == {"count": "5", "product": "32"}


async def test_a_search_step_committed_twice_applies_once(client: Client,
                                                          namespace: str) -> None:
    d = await Driver.start(client, namespace)
    command = d.command("search", search_call("incr", "n", 2))
    assert ok(await d.commit(command)) == 2
    assert ok(await d.commit(command)) == 2
    assert ok(await d.alone(command, "")) == 2
    setter = d.command("search", search_call("set", {"n": "x", "m": "y"}))
    assert ok(await d.commit(setter)) == 1
    assert ok(await d.commit(setter)) == 1
    bad = d.command("search", search_call("mult", "n", 2))
    assert failed(await d.commit(bad)) == failed(await d.commit(bad))
    assert await d.document("search") == {"n": "x", "m": "y"}


async def two_counters(n: int) -> list[Any]:
    s = await workflow.search()

    async def branch() -> list[Any]:
        return [await s.incr("hits", 1) for _ in range(n)]
    a, b = await asyncio.gather(branch(), branch())
    return [*a, *b]


async def test_search_updates_are_never_lost(client: Client, dsn: str,
                                             namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="two", workflow=two_counters,
                        namespace=namespace)
    handle = await client.workflow.start(args=[100], task_queue="two",
                                         workflow_name=two_counters)
    assert sorted(await handle.result(timeout=30)) == list(range(1, 201))
    assert await handle.query_state(["hits"]) == {"hits": "200"}

    d = await Driver.start(client, namespace)

    async def thread(dim: str) -> list[Any]:
        return [ok(await d.alone(d.command("search", search_call("incr", "n", 1), dim), dim))
                for _ in range(40)]
    runs = await asyncio.gather(*[thread(f"h{i}") for i in range(4)])
    assert sorted(r for run in runs for r in run) == list(range(1, 161))
    assert await d.document("search") == {"n": "160"}


NASTY = ["'; DROP TABLE steps; --", 'x" OR "1"="1', "$1", "%s", "%(name)s", "{a,b}", "ü🙂"]


async def test_search_keys_and_values_are_data_never_sql(client: Client,
                                                         namespace: str) -> None:
    d = await Driver.start(client, namespace)
    fields = {k: k for k in NASTY}
    assert ok(await d.commit(d.command("search", search_call("set", fields)))) == len(NASTY)
    got = ok(await d.commit(d.command("search", search_call("mget", *NASTY))))
    assert got == NASTY
    assert await d.document("search") == fields
    assert await client.workflow.search("idle", None, None, query={NASTY[0]: NASTY[0]}) == [
        d.workflow_id]
    assert await client.workflow.search("idle", None, None, query={"a": "' OR 1=1 --"}) == []
    assert ok(await d.commit(d.command("search", search_call("delete", *NASTY)))) == len(NASTY)
    assert len(await sql(f'SELECT 1 FROM "{namespace}".steps')) == 3


async def _fleet(client: Client) -> dict[str, str]:
    """Idle workflows (nobody serves their queues) with initial search fields."""
    specs = [("w1", "q1", "alpha", {"tier": "gold", "region": "eu", "score": 5}),
             ("w2", "q1", "alpha", {"tier": "silver", "region": "eu"}),
             ("w3", "q1", "beta", {"tier": "gold", "region": "us"}),
             ("w4", "q2", "alpha", {"tier": "gold", "region": "eu"})]
    for wid, queue, name, data in specs:
        await client.workflow.start(args=[], task_queue=queue, workflow_name=name,
                                    workflow_id=wid, search={"data": data})
    return {wid: queue for wid, queue, _, _ in specs}


async def test_find_workflows_by_search_fields(client: Client, namespace: str) -> None:
    await _fleet(client)
    search = client.workflow.search
    assert await search("q1", "alpha", namespace, query={"tier": "gold"}) == ["w1"]
    assert await search("q1", None, namespace, query={"tier": "gold"}) == ["w1", "w3"]
    assert await search(None, None, namespace, query={"tier": "gold"}) == ["w1", "w3", "w4"]
    assert await search(None, "alpha", None, query={"region": "eu", "tier": "gold"}) == [
        "w1", "w4"]
    assert await search(None, None, None, query={"score": 5}) == ["w1"]  # 5 is stored "5"
    assert await search(None, None, None, query={"score": "5"}) == ["w1"]
    assert await search(None, None, None, query={"tier": "bronze"}) == []
    assert await search("q2", None, None, query={}) == ["w4"]
    with pytest.raises(TypeError):
        await search("q1", "alpha", namespace)
    with pytest.raises(TypeError):
        await search("q1", "alpha", namespace, query=["tier"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        await search("q1", "alpha", "No-Such", query={"tier": "gold"})


async def test_find_workflows_with_sql(client: Client, namespace: str) -> None:
    await _fleet(client)
    search = client.workflow.search
    rows = await search("q1", None, namespace, "sql",
                        "SELECT workflow_id, search->>'tier' AS tier FROM workflows "
                        "WHERE search->>'region' = $1 ORDER BY workflow_id", "eu")
    assert rows == [{"workflow_id": "w1", "tier": "gold"},
                    {"workflow_id": "w2", "tier": "silver"}]
    rows = await search(None, "alpha", None, "sql",
                        "SELECT workflow_id FROM workflows WHERE workflow_id LIKE 'w%%' "
                        "AND search->>'tier' = %s AND task_queue = %s", "gold", "q2")
    assert rows == [{"workflow_id": "w4"}]
    rows = await search(None, None, None, "sql",
                        "SELECT count(*) AS n FROM workflows WHERE workflow_id LIKE 'w%'")
    assert rows == [{"n": 4}]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    rows = await search("q1", None, None, "sql", "SELECT count(*) AS n FROM workflows "
                        "WHERE created_at > $1 AND status = ANY($2)", an_hour_ago,
                        ["running", "pending"])
    assert rows == [{"n": 3}]
    rows = await search("q1", "beta", None, "sql", "SELECT * FROM workflows;")
    assert len(rows) == 1 and set(rows[0]) == set(VIEW_COLUMNS)
    assert rows[0]["search"] == {"tier": "gold", "region": "us"}
    rows = await search(None, None, None, "sql",
                        "SELECT workflow_id FROM workflows WHERE search @> $1 -- a comment",
                        {"tier": "silver"})
    assert rows == [{"workflow_id": "w2"}]
    assert await search(None, None, None, "sql",
                        "SELECT workflow_id FROM workflows WHERE search->>'tier' = $1",
                        "gold' OR '1'='1") == []


async def test_sql_search_cannot_write_or_run_away(client: Client, namespace: str) -> None:
    await _fleet(client)
    search = client.workflow.search
    attacks = [
        "DELETE FROM workflows RETURNING workflow_id",
        f'UPDATE "{namespace}".workflows SET status = \'x\' RETURNING 1',
        f'WITH d AS (DELETE FROM "{namespace}".workflows RETURNING 1) SELECT * FROM d',
        f'SELECT 1) AS r; DROP TABLE "{namespace}".steps; SELECT * FROM (SELECT 1',
        f'SELECT 1) AS r; COMMIT; DROP TABLE "{namespace}".steps; SELECT * FROM (SELECT 1',
        f'SELECT 1 AS x; DROP TABLE "{namespace}".steps',
        f'SELECT nextval(pg_get_serial_sequence(\'"{namespace}".tasks\', \'id\'))',
        f'SELECT * FROM "{namespace}".workflows FOR UPDATE',
        "SELECT 1 FROM workflows WHERE $1 = 'a'",  # a parameter that was not given
    ]
    for attack in attacks:
        with pytest.raises(ValueError, match="search SQL failed"):
            await search(None, None, None, "sql", attack)
    with pytest.raises(TimeoutError):
        await search(None, None, None, "sql", "SELECT pg_sleep(5)", timeout=0.2)
    assert len(await search(None, None, None, "sql", "SELECT pg_advisory_lock(4242)")) == 1
    assert await sql("SELECT pg_try_advisory_lock(4242)") == [(True,)]  # not left held
    assert len(await sql(f'SELECT 1 FROM "{namespace}".workflows')) == 4
    assert len(await sql(f'SELECT 1 FROM "{namespace}".steps')) == 0
    with pytest.raises(ValueError, match="unknown index"):
        await search(None, None, None, "idx", "SELECT 1")
    with pytest.raises(TypeError):
        await search(None, None, None, "sql")
    with pytest.raises(ValueError, match="timeout"):
        await search(None, None, None, "sql", "SELECT 1", timeout=0)


def test_placeholder_styles() -> None:
    assert dollar_placeholders("a = $1 AND b LIKE 'x%'") == "a = $1 AND b LIKE 'x%'"
    assert dollar_placeholders("a = %s AND b = %s AND c LIKE 'x%%'") == (
        "a = $1 AND b = $2 AND c LIKE 'x%'")
