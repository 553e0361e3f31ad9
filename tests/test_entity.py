"""Entity memory: every method in real workflows, replay safety, concurrency, injection, the
static queries, and a property test of random operation sequences against a Python model."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memflow import Client, Entity, Worker, workflow
from memflow.commands import EntityCall, EntityOp, SearchCall, SearchOp
from memflow.errors import MemFlowFatalError
from memflow.store import NamespaceStore, Thread
from memflow.store.entity import entity_statement
from memflow.store.passes import Lease
from memflow.store.search import search_statement
from memflow.workflow.entity import entity_call
from tests.support import sql


class Driver:
    """Commits entity and search calls for one idle workflow (no worker serves its queue)
    straight through the store, as a workflow pass would: fast, and still real Postgres."""

    def __init__(self, ns: NamespaceStore, workflow_id: str, run_id: str, lease: Lease):
        self.ns = ns
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.lease = lease  # the run's pass task, claimed by the driver as a worker would
        self.version = 0
        self.next_idx: dict[str, int] = {}

    @classmethod
    async def start(cls, client: Client, namespace: str, **start: Any) -> Driver:
        handle = await client.workflow.start(args=[], task_queue="idle", workflow_name="idle",
                                             **start)
        ns = await client._namespace(namespace)
        [task] = await ns.tasks.claim(["idle"], "driver", 600.0, 1)
        return cls(ns, handle.workflow_id, handle.run_id or "",
                   Lease(task.id, "driver", task.attempts))

    def thread(self, dim: str = "") -> Thread:
        return Thread(self.workflow_id, self.run_id, dim, "idle")

    def command(self, kind: str, operation: EntityOp | SearchOp,
                dim: str = "") -> EntityCall | SearchCall:
        idx = self.next_idx.get(dim, 0)
        self.next_idx[dim] = idx + 1
        if isinstance(operation, EntityOp):
            assert kind == "entity"
            return EntityCall(idx, operation)
        assert kind == "search"
        return SearchCall(idx, operation, operation.op)

    async def commit(self, command: EntityCall | SearchCall, dim: str = "") -> dict[str, Any]:
        """Commit one command as a pass does; returns its step row."""
        outcome = await self.ns.passes.commit_pass(self.thread(dim), [command], [],
                                                   lease=self.lease, version=self.version)
        assert outcome.refused is None and outcome.version is not None
        self.version = outcome.version
        return outcome.results[command.idx]

    async def entity(self, op: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await self.commit(self.command("entity", entity_call(op, *args, **kwargs)))

    async def alone(self, command: EntityCall | SearchCall, dim: str) -> dict[str, Any]:
        """Run the command's statement by itself (its own transaction, no pass lock)."""
        if isinstance(command, EntityCall):
            [(text, params)] = entity_statement(self.thread(dim), command, self.ns.namespace)
        else:
            [(text, params)] = search_statement(self.thread(dim), command, self.ns.namespace)
        rows = await self.ns.store.fetch(self.ns.sql(text), params)
        return rows[0]

    async def document(self, column: str = "entity") -> Any:
        rows = await sql(f'SELECT {column} FROM "{self.ns.namespace}".workflows '
                         "WHERE run_id = %s", self.run_id)
        return rows[0][0]


def ok(row: dict[str, Any]) -> Any:
    assert row["status"] == "done", row
    return row["result"]


def failed(row: dict[str, Any]) -> str:
    assert row["status"] == "failed", row
    assert row["error"]["code"] == 598 and row["error"]["type"] == "MemFlowFatalError"
    return str(row["error"]["message"])


# Every method in a real workflow --------------------------------------------------------------

async def entity_tour() -> dict[str, Any]:
    e = await workflow.entity()
    out: dict[str, Any] = {}
    out["set"] = await e.set({"user": {"name": "Ann", "age": 30}, "tags": ["a"]})
    out["merge"] = await e.merge({"user": {"age": 31, "address": {"city": "Oslo"}},
                                  "tags": ["b"]})
    out["get_all"] = await e.get()
    out["get"] = await e.get("user.address.city")
    out["get_missing"] = await e.get("user.nothing.here")
    out["append"] = await e.append("log", "one")
    out["append_list"] = await e.append("log", ["two"])
    out["prepend"] = await e.prepend("log", 0)
    out["remove"] = await e.remove("log", 0)
    out["increment"] = await e.increment("stats.visits")
    out["increment_by"] = await e.increment("stats.visits", 2.5)
    out["toggle"] = await e.toggle("flags.on")
    out["toggle_again"] = await e.toggle("flags.on")
    out["sine_new"] = await e.set_if_not_exists("created.by", "ann")
    out["sine_kept"] = await e.set_if_not_exists("created.by", "bob")
    out["delete"] = await e.delete("tags")
    return out


async def test_every_entity_method_in_a_workflow(client: Client, dsn: str,
                                                 namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="ent", workflow=entity_tour,
                        namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="ent", workflow_name=entity_tour,
                                         entity="tour")
    out = await handle.result(timeout=20)
    assert out["set"] == {"user": {"name": "Ann", "age": 30}, "tags": ["a"]}
    merged = {"user": {"name": "Ann", "age": 31, "address": {"city": "Oslo"}}, "tags": ["b"]}
    assert out["merge"] == merged and out["get_all"] == merged
    assert out["get"] == "Oslo" and out["get_missing"] is None
    assert out["append"] == ["one"] and out["append_list"] == ["one", ["two"]]
    assert out["prepend"] == [0, "one", ["two"]] and out["remove"] == ["one", ["two"]]
    assert out["increment"] == 1 and out["increment_by"] == 3.5
    assert out["toggle"] is True and out["toggle_again"] is False
    assert out["sine_new"] == "ann" and out["sine_kept"] == "ann"
    final = {"user": {"name": "Ann", "age": 31, "address": {"city": "Oslo"}},
             "log": ["one", ["two"]], "stats": {"visits": 3.5}, "flags": {"on": False},
             "created": {"by": "ann"}}
    assert out["delete"] == final
    assert await handle.entity() == final
    exported = await handle.export()
    assert exported["run"]["entity"] == final
    steps = [(s["kind"], s["name"], s["status"]) for s in exported["timeline"]]
    assert len(steps) == 16  # workflow.entity() itself takes no step
    assert steps[0] == ("entity", "set", "done") and steps[-1] == ("entity", "delete", "done")
    assert {k for k, _, _ in steps} == {"entity"}


async def entity_misuse() -> dict[str, Any]:
    e = await workflow.entity()
    await e.set({"s": "text", "n": 1, "o": {}, "l": [1]})
    out: dict[str, Any] = {}
    for label, call in [
        ("increment a string", lambda: e.increment("s")),
        ("toggle a number", lambda: e.toggle("n")),
        ("append to an object", lambda: e.append("o", 1)),
        ("remove from nothing", lambda: e.remove("missing", 0)),
        ("through a scalar", lambda: e.increment("s.deeper")),
        ("index past the end", lambda: e.increment("l.3")),
        ("index that is a name", lambda: e.toggle("l.x.y")),
    ]:
        try:
            await call()
            out[label] = "no error"
        except MemFlowFatalError as err:
            out[label] = err.message
    for label, bad in [
        ("path not a string", lambda: e.get(5)),  # type: ignore[arg-type]
        ("empty path", lambda: e.increment("")),
        ("empty segment", lambda: e.toggle("a..b")),
        ("set a list", lambda: e.set([1])),  # type: ignore[arg-type]
        ("NaN value", lambda: e.append("l", float("nan"))),
        ("NUL in a path", lambda: e.get("a\x00b")),
        ("by as text", lambda: e.increment("n", "1")),  # type: ignore[arg-type]
        ("by as bool", lambda: e.increment("n", True)),
        ("index as float", lambda: e.remove("l", 1.5)),  # type: ignore[arg-type]
    ]:
        try:
            bad()
            out[label] = "no error"
        except (TypeError, ValueError) as err:
            out[label] = type(err).__name__
    out["after"] = await e.get()
    return out


async def test_calls_that_do_not_fit_fail_cleanly(client: Client, dsn: str,
                                                  namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="mis", workflow=entity_misuse,
                        namespace=namespace)
    handle = await client.workflow.start(args=[], task_queue="mis",
                                         workflow_name=entity_misuse)
    out = await handle.result(timeout=20)
    assert "holds a JSON string, not a number" in out["increment a string"]
    assert "holds a JSON number, not a boolean" in out["toggle a number"]
    assert "holds a JSON object, not an array" in out["append to an object"]
    assert '"missing" does not exist' in out["remove from nothing"]
    assert '"s" holds a JSON string, not an object' in out["through a scalar"]
    assert 'the array at "l" has no element 3' in out["index past the end"]
    assert 'the array at "l" has no element x' in out["index that is a name"]
    assert out["increment a string"].startswith("entity.increment('s'): ")
    assert {out[k] for k in ("path not a string", "set a list", "by as text", "by as bool",
                             "index as float")} == {"TypeError"}
    assert {out[k] for k in ("empty path", "empty segment", "NaN value",
                             "NUL in a path")} == {"ValueError"}
    assert out["after"] == {"s": "text", "n": 1, "o": {}, "l": [1]}  # nothing changed


async def test_outside_a_workflow_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="inside a workflow"):
        await workflow.entity()
    with pytest.raises(RuntimeError, match="inside a workflow"):
        Entity().get("a")


# Semantics through the store ---------------------------------------------------------------

async def test_merge_is_a_true_deep_merge(client: Client, namespace: str) -> None:
    d = await Driver.start(client, namespace)
    ok(await d.entity("set", value={"a": {"b": 1, "c": {"d": 2, "e": 3}}, "l": [1, 2],
                                    "s": "x", "keep": True}))
    merged = ok(await d.entity("merge", value={
        "a": {"c": {"d": 20, "f": 4}}, "l": [3], "s": {"t": 1}, "n": None, "x.y": 1,
        "new": {"deep": {"er": {}}}}))
    expected = {"a": {"b": 1, "c": {"d": 20, "e": 3, "f": 4}}, "l": [3], "s": {"t": 1},
                "n": None, "x.y": 1, "keep": True, "new": {"deep": {"er": {}}}}
    assert merged == expected
    assert ok(await d.entity("merge", value={})) == expected
    assert ok(await d.entity("merge", value={"a": {}})) == expected
    assert ok(await d.entity("merge", value={"keep": {}}))["keep"] == {}
    assert await d.document() == {**expected, "keep": {}}
    ok(await d.entity("set", value={"items": [{"a": 1}], "n": 1}))
    assert ok(await d.entity("merge", value={"items": {"0": {"b": 2}}})) == {
        "items": {"0": {"b": 2}}, "n": 1}  # an array is replaced, never merged into
    deep: dict[str, Any] = {}
    for _ in range(300):
        deep = {"x": deep}
    with pytest.raises(ValueError, match="256 levels"):
        entity_call("merge", value=deep)
    assert entity_call("set", value=deep).op == "set"  # set takes any depth


async def test_merge_cost_grows_with_the_patch_not_its_square(client: Client,
                                                             namespace: str) -> None:
    d = await Driver.start(client, namespace)
    wide = {"users": {f"u{i}": {"n": i, "tags": {"t": True}} for i in range(20_000)}}
    loop = asyncio.get_running_loop()
    started = loop.time()
    ok(await d.entity("merge", value=wide))
    ok(await d.entity("merge", value={"users": {"u7": {"tags": {"x": 1}}}}))
    assert loop.time() - started < 10  # one jsonb_set per object took minutes here
    doc = await d.document()
    assert len(doc["users"]) == 20_000 and doc["users"]["u7"] == {
        "n": 7, "tags": {"t": True, "x": 1}}


async def test_paths_step_into_arrays(client: Client, namespace: str) -> None:
    d = await Driver.start(client, namespace)
    ok(await d.entity("set", value={"items": [{"qty": 1}, {"qty": 5}, None]}))
    assert ok(await d.entity("increment", "items.1.qty", by=2)) == 7
    assert ok(await d.entity("increment", "items.-3.qty", by=-1)) == 0
    assert ok(await d.entity("toggle", "items.2.done")) is True  # null became an object
    assert ok(await d.entity("get", "items.-1")) == {"done": True}
    assert "has no element 3" in failed(await d.entity("increment", "items.3.qty"))
    assert ok(await d.entity("delete", "items.0")) == {"items": [{"qty": 7},
                                                                 {"done": True}]}
    assert ok(await d.entity("delete", "items.nope")) == {"items": [{"qty": 7},
                                                                    {"done": True}]}
    assert ok(await d.entity("remove", "items", index=-1)) == [{"qty": 7}]
    assert ok(await d.entity("remove", "items", index=9)) == [{"qty": 7}]  # past the end
    assert ok(await d.entity("get", "items.0.qty.deeper")) is None


async def test_increment_is_exact_decimal(client: Client, namespace: str) -> None:
    d = await Driver.start(client, namespace)
    for _ in range(3):
        result = ok(await d.entity("increment", "n", by=0.1))
    assert result == 0.3  # not 0.30000000000000004
    assert ok(await d.entity("increment", "n", by=0.7)) == 1
    assert ok(await d.entity("increment", "big", by=2**62)) == 2**62
    assert ok(await d.entity("increment", "big", by=2**62 - 1)) == 2**63 - 1


# Replay safety ----------------------------------------------------------------------------

async def counting(n: int) -> list[Any]:
    e = await workflow.entity()
    seen = []
    for _ in range(n):
        seen.append(await e.increment("count"))
        await workflow.sleep_for(0.01)  # ends the pass: the next one replays from history
    seen.append(await e.get("count"))
    return seen


async def test_results_are_stable_when_every_pass_replays(client: Client, dsn: str,
                                                          namespace: str) -> None:
    for _ in range(2):  # two workers without a cache: passes replay, on either worker
        await Worker.create(connection=dsn, task_queue="cnt", workflow=counting,
                            namespace=namespace, options={"cache_size": 0})
    handle = await client.workflow.start(args=[6], task_queue="cnt", workflow_name=counting)
    assert await handle.result(timeout=30) == [1, 2, 3, 4, 5, 6, 6]
    assert await handle.entity() == {"count": 6}  # each increment applied exactly once
    kinds = [s["kind"] for s in (await handle.export())["timeline"]]
    assert kinds == ["entity", "sleep"] * 6 + ["entity"]


async def test_a_step_committed_twice_applies_once(client: Client, namespace: str) -> None:
    d = await Driver.start(client, namespace)
    first = d.command("entity", entity_call("increment", "n", by=5))
    assert ok(await d.commit(first)) == 5
    assert ok(await d.commit(first)) == 5  # the recorded value, document untouched
    assert ok(await d.alone(first, "")) == 5
    bad = d.command("entity", entity_call("append", "n", value=1))
    message = failed(await d.commit(bad))
    assert failed(await d.commit(bad)) == message
    assert await d.document() == {"n": 5}
    count = await sql(f'SELECT count(*) FROM "{namespace}".steps WHERE run_id = %s', d.run_id)
    assert count == [(2,)]


# Concurrency ------------------------------------------------------------------------------

async def two_branches(n: int) -> list[Any]:
    e = await workflow.entity()

    async def branch() -> list[Any]:
        return [await e.increment("hits") for _ in range(n)]
    a, b = await asyncio.gather(branch(), branch())
    return [*a, *b, await e.get("hits")]


async def test_parallel_branches_lose_no_update(client: Client, dsn: str,
                                                namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="par", workflow=two_branches,
                        namespace=namespace)
    handle = await client.workflow.start(args=[100], task_queue="par",
                                         workflow_name=two_branches)
    out = await handle.result(timeout=30)
    assert out[-1] == 200 and sorted(out[:-1]) == list(range(1, 201))
    assert await handle.entity() == {"hits": 200}


async def hook_counter(n: int) -> int:
    e = await workflow.entity()
    for _ in range(n):
        await e.increment("hits")
    return n


async def hooks_main(n: int) -> Any:
    await asyncio.gather(*[workflow.exec_hook(task_queue="hk", workflow_name="hook_counter",
                                              args=[n]) for _ in range(2)])
    return await (await workflow.entity()).get("hits")


async def test_hook_threads_share_the_entity_and_lose_no_update(client: Client, dsn: str,
                                                                namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="hk", workflow=[hooks_main, hook_counter],
                        namespace=namespace)
    handle = await client.workflow.start(args=[100], task_queue="hk",
                                         workflow_name=hooks_main)
    assert await handle.result(timeout=40) == 200
    assert await handle.entity() == {"hits": 200}


async def test_concurrent_statements_lose_no_update(client: Client, namespace: str) -> None:
    d = await Driver.start(client, namespace)

    async def thread(dim: str) -> list[Any]:
        results = []
        for _ in range(50):
            command = d.command("entity", entity_call("increment", "n"), dim)
            results.append(ok(await d.alone(command, dim)))
        return results
    runs = await asyncio.gather(*[thread(f"h{i}") for i in range(4)])
    assert sorted(r for run in runs for r in run) == list(range(1, 201))
    assert await d.document() == {"n": 200}


# Injection --------------------------------------------------------------------------------

NASTY = ["'; DROP TABLE steps; --", 'a"b', "{x,y}", "$1", "%(run_id)s", "%s", "\\", "ü🙂",
         ") OR 1=1 --", "s"]


async def test_paths_and_values_are_data_never_sql(client: Client, namespace: str) -> None:
    d = await Driver.start(client, namespace, entity="n'; DROP TABLE workflows; --")
    for i, text in enumerate(NASTY):
        assert ok(await d.entity("set_if_not_exists", f"k{i}.{text}", value=text)) == text
        assert ok(await d.entity("get", f"k{i}.{text}")) == text
    doc = await d.document()
    assert doc == {f"k{i}": {text: text} for i, text in enumerate(NASTY)}
    found = await Entity.find("n'; DROP TABLE workflows; --", {"k0": {NASTY[0]: NASTY[0]}},
                              client)
    assert [r["workflow_id"] for r in found] == [d.workflow_id]
    assert await Entity.find("n'; DROP TABLE workflows; --", {"k1": "' OR 1=1 --"},
                             client) == []
    assert await Entity.find_by_condition("n'; DROP TABLE workflows; --", "k0", "%' OR '1",
                                          "LIKE", client) == []
    for field in ["k0; DROP TABLE steps", "k0'", "k0.*", "1abc", "a-b", "a..b", "", "a b",
                  "k0)--", "é"]:
        with pytest.raises(ValueError, match="invalid entity field"):
            await Entity.find("x", {field: 1}, client)
        with pytest.raises(ValueError, match="invalid entity field"):
            await Entity.create_index("x", field, client)
        with pytest.raises(ValueError, match="invalid entity field"):
            await Entity.find_by_condition("x", field, 1, "=", client)
    tables = await sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                       namespace)
    assert tables[0][0] >= 5
    assert len(await sql(f'SELECT 1 FROM "{namespace}".steps')) == 2 * len(NASTY)


# Static queries ---------------------------------------------------------------------------

async def profile(doc: dict[str, Any]) -> str:
    e = await workflow.entity()
    await e.set(doc)
    return "ok"


PEOPLE = [
    ("p1", "user", {"name": "Ann", "age": 9, "city": "Oslo", "tags": ["a"],
                    "address": {"zip": "0150"}}),
    ("p2", "user", {"name": "Bob", "age": 10, "city": "Rome", "tags": ["b"]}),
    ("p3", "user", {"name": "Cid", "age": 30, "city": "Oslo", "address": {"zip": "0151"}}),
    ("p4", "user", {"name": "Dee", "age": 100.5, "city": "Lima"}),
    ("p5", "user", {"name": "Eve", "age": "30"}),
    ("o1", "order", {"name": "Ann", "age": 9}),
]


async def test_static_entity_queries(dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="prof", workflow=profile,
                        namespace=namespace)
    client = Client(connection=dsn)  # default namespace: the queries pass namespace=
    for wid, kind, doc in PEOPLE:
        handle = await client.workflow.start(args=[doc], task_queue="prof",
                                             workflow_name=profile, workflow_id=wid,
                                             entity=kind, namespace=namespace)
        assert await handle.result(timeout=20) == "ok"

    async def ids(conditions: dict[str, Any], **kw: Any) -> list[str]:
        rows = await Entity.find("user", conditions, client, namespace=namespace, **kw)
        return [r["workflow_id"] for r in rows]

    assert await ids({}) == ["p1", "p2", "p3", "p4", "p5"]
    assert await ids({"age": 30}) == ["p3"]  # a number matches numbers only
    assert await ids({"age": 30.0}) == ["p3"]
    assert await ids({"age": {"$eq": "30"}}) == ["p5"]
    assert await ids({"age": {"$gt": 9}}) == ["p2", "p3", "p4"]  # numbers, not text
    assert await ids({"age": {"$gte": 10, "$lt": 100.5}}) == ["p2", "p3"]
    assert await ids({"age": {"$lte": 10}}) == ["p1", "p2"]
    assert await ids({"age": {"$gt": "2"}}) == ["p5"]  # strings compare with strings
    assert await ids({"city": {"$ne": "Oslo"}}) == ["p2", "p4", "p5"]  # missing counts
    assert await ids({"city": {"$in": ["Rome", "Lima", 3]}}) == ["p2", "p4"]
    assert await ids({"address.zip": "0151"}) == ["p3"]
    assert await ids({"city": "Oslo", "age": {"$lt": 20}}) == ["p1"]
    assert await ids({"tags": ["a"]}) == ["p1"]
    assert await ids({}, limit=2) == ["p1", "p2"]
    assert await ids({}, limit=2, offset=3) == ["p4", "p5"]
    rows = await Entity.find("user", {"name": "Ann"}, client, namespace=namespace)
    assert rows == [{"workflow_id": "p1", "context": PEOPLE[0][2], "status": "completed"}]

    found = await Entity.find_by_id("user", "p2", client, namespace=namespace)
    assert found == {"workflow_id": "p2", "context": PEOPLE[1][2], "status": "completed"}
    assert await Entity.find_by_id("user", "o1", client, namespace=namespace) is None
    assert await Entity.find_by_id("user", "nobody", client, namespace=namespace) is None

    async def cond(field: str, value: Any, op: str, **kw: Any) -> list[str]:
        rows = await Entity.find_by_condition("user", field, value, op, client,
                                              namespace=namespace, **kw)
        return [r["workflow_id"] for r in rows]

    assert await cond("age", 30, "=") == ["p3"]
    assert await cond("city", "Oslo", "!=") == ["p2", "p4", "p5"]
    assert await cond("age", 10, ">") == ["p3", "p4"]
    assert await cond("age", 10, ">=") == ["p2", "p3", "p4"]
    assert await cond("age", 10, "<") == ["p1"]
    assert await cond("age", 10, "<=") == ["p1", "p2"]
    assert await cond("name", "%e%", "LIKE") == ["p4", "p5"]
    assert await cond("name", "a%", "like") == []  # LIKE is case-sensitive
    assert await cond("name", ["Bob", "Eve", "Zed"], "IN") == ["p2", "p5"]
    assert await cond("age", 0, ">", limit=1, offset=1) == ["p2"]

    name = await Entity.create_index("user", "address.zip", client, namespace=namespace)
    assert await Entity.create_index("user", "address.zip", client, namespace=namespace) == name
    indexes = await sql("SELECT indexdef FROM pg_indexes WHERE schemaname = %s "
                        "AND indexname = %s", namespace, name)
    assert len(indexes) == 1 and "gin" in indexes[0][0]
    assert await ids({"address.zip": "0150"}) == ["p1"]

    with pytest.raises(ValueError, match="unknown operator"):
        await Entity.find("user", {"age": {"$regex": "x"}}, client, namespace=namespace)
    with pytest.raises(ValueError, match="invalid operator"):
        await Entity.find_by_condition("user", "age", 1, "~", client, namespace=namespace)
    with pytest.raises(TypeError):
        await Entity.find("user", {"age": {"$in": 3}}, client, namespace=namespace)
    with pytest.raises(TypeError):
        await Entity.find("user", {"age": {"$gt": None}}, client, namespace=namespace)
    with pytest.raises(ValueError, match="limit"):
        await Entity.find("user", {}, client, limit=-1, namespace=namespace)
    with pytest.raises(TypeError, match="Client"):
        await Entity.find("user", {}, "postgresql://nowhere")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        await Entity.find("user", {}, client, namespace="Bad-Name")
    with pytest.raises(ValueError, match="entity"):
        await Entity.find("", {}, client, namespace=namespace)


# Property: random sequences against a Python model ------------------------------------------

MISSING = object()


class Misfit(Exception):
    """The model's version of a failed step."""


def _index(seg: str, items: list[Any]) -> int | None:
    try:
        i = int(seg)
    except ValueError:
        return None
    return i % len(items) if -len(items) <= i < len(items) else None


def _child(node: Any, seg: str) -> Any:
    if isinstance(node, dict):
        return node.get(seg, MISSING)
    if isinstance(node, list):
        i = _index(seg, node)
        return MISSING if i is None else node[i]
    return MISSING


def _put(node: Any, seg: str, value: Any) -> None:
    if isinstance(node, dict):
        node[seg] = value
    else:
        node[_index(seg, node)] = value  # type: ignore[index]


def model_get(doc: Any, path: list[str]) -> Any:
    for seg in path:
        doc = _child(doc, seg)
        if doc is MISSING:
            return MISSING
    return doc


def model_walk(doc: dict[str, Any], path: list[str]) -> tuple[Any, str]:
    """The container of the path's last segment, creating missing objects on the way."""
    node: Any = doc
    for seg in path[:-1]:
        child = _child(node, seg)
        if isinstance(node, list) and child is MISSING:
            raise Misfit("no such element")
        if child is MISSING or child is None:
            child = {}
            _put(node, seg, child)
        elif not isinstance(child, dict | list):
            raise Misfit("not an object")
        node = child
    if isinstance(node, list) and _index(path[-1], node) is None:
        raise Misfit("no such element")
    return node, path[-1]


def model_merge(target: Any, patch: Any) -> Any:
    if isinstance(patch, dict):
        base = dict(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            base[k] = model_merge(base.get(k, MISSING), v)
        return base
    return copy.deepcopy(patch)


def model_apply(doc: dict[str, Any], op: str, path: str | None, arg: Any) -> tuple[Any, Any]:
    """(new document, result) of one call, or raises Misfit (the document is not touched)."""
    new = copy.deepcopy(doc)
    segs = path.split(".") if path else []
    if op == "set":
        return copy.deepcopy(arg), copy.deepcopy(arg)
    if op == "merge":
        merged = model_merge(new, arg)
        return merged, merged
    if op == "get":
        value = model_get(new, segs)
        return doc, None if value is MISSING else value
    if op == "delete":
        parent = model_get(new, segs[:-1])
        if model_get(new, segs) is not MISSING:
            if isinstance(parent, dict):
                del parent[segs[-1]]
            else:
                del parent[_index(segs[-1], parent)]
        return new, new
    if op == "remove":
        items = model_get(new, segs)
        if not isinstance(items, list):
            raise Misfit("not an array")
        if -len(items) <= arg < len(items):
            del items[arg]
        return new, items
    container, last = model_walk(new, segs)
    node = _child(container, last)
    if op == "set_if_not_exists":
        if node is MISSING:
            _put(container, last, copy.deepcopy(arg))
            return new, arg
        return new, node
    current = None if node is MISSING else node
    if op in ("append", "prepend"):
        if current is not None and not isinstance(current, list):
            raise Misfit("not an array")
        items = list(current or [])
        value = [*items, arg] if op == "append" else [arg, *items]
    elif op == "increment":
        if current is not None and (isinstance(current, bool)
                                    or not isinstance(current, int | float)):
            raise Misfit("not a number")
        value = (current or 0) + arg
    else:  # toggle
        if current is not None and not isinstance(current, bool):
            raise Misfit("not a boolean")
        value = not current if current is not None else True
    _put(container, last, value)
    return new, value


SEGMENTS = st.sampled_from(["a", "b", "c", "0", "1", "-1"])
PATHS = st.lists(SEGMENTS, min_size=1, max_size=3).map(".".join)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["x", "y"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c"]), inner,
                                                 max_size=3)), max_leaves=6)
DICTS = st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3)
OPS = st.one_of(
    st.tuples(st.just("set"), st.none(), DICTS),
    st.tuples(st.just("merge"), st.none(), DICTS),
    st.tuples(st.just("get"), st.one_of(st.none(), PATHS), st.none()),
    st.tuples(st.just("delete"), PATHS, st.none()),
    st.tuples(st.sampled_from(["append", "prepend", "set_if_not_exists"]), PATHS, VALUES),
    st.tuples(st.just("remove"), PATHS, st.integers(-3, 3)),
    st.tuples(st.just("increment"), PATHS, st.sampled_from([1, -2, 3, 0.5])),
    st.tuples(st.just("toggle"), PATHS, st.none()),
)


def _call_options(op: Any, path: str | None, arg: Any) -> EntityOp:
    if op in ("set", "merge"):
        return entity_call(op, value=arg)
    if op in ("append", "prepend", "set_if_not_exists"):
        return entity_call(op, path, value=arg)
    if op == "remove":
        return entity_call(op, path, index=arg)
    if op == "increment":
        return entity_call(op, path, by=arg)
    return entity_call(op, path)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=1, max_size=15))
async def test_random_sequences_match_a_python_model(client: Client, namespace: str,
                                                     ops: list[tuple[str, Any, Any]]) -> None:
    d = await Driver.start(client, namespace)
    model: dict[str, Any] = {}
    committed = []
    for op, path, arg in ops:
        command = d.command("entity", _call_options(op, path, arg))
        row = await d.commit(command)
        committed.append((command, row))
        try:
            model, expected = model_apply(model, op, path, arg)
        except Misfit:
            assert row["status"] == "failed", (op, path, arg, row)
        else:
            assert row["status"] == "done", (op, path, arg, row, model)
            assert row["result"] == expected, (op, path, arg)
    assert await d.document() == model
    for command, row in committed:  # committing again returns the record and changes nothing
        assert await d.commit(command) == row
    assert await d.document() == model
