"""The durable core end to end: start, workers, activities, handles, errors, payloads."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import pytest

from memflow import (
    Client,
    Connection,
    MemFlow,
    Postgres,
    Worker,
    register_activity_worker,
    workflow,
)
from memflow.errors import (
    DuplicateJobError,
    MemFlowFatalError,
    MemFlowMaxedError,
    WorkflowNotFoundError,
)
from memflow.testing import WorkflowEnvironment
from tests.support import sql

calls: dict[str, int] = {}


async def process_payment(amount: float) -> str:
    calls["process_payment"] = calls.get("process_payment", 0) + 1
    return f"Processed ${amount}"


def send_email(to: str, message: str) -> None:  # a sync activity: runs in a thread
    calls["send_email"] = calls.get("send_email", 0) + 1


async def order_workflow(amount: float) -> str:
    acts = workflow.proxy_activities(task_queue="payment", retry_policy={"maximum_attempts": 3})
    result = await acts.process_payment(amount)
    await acts.send_email("customer@example.com", result)
    return result


async def test_seed_order_example(dsn: str, namespace: str) -> None:
    calls.clear()
    await register_activity_worker({"connection": dsn, "task_queue": "payment",
                                    "namespace": namespace},
                                   {"process_payment": process_payment,
                                    "send_email": send_email}, "payment")
    await Worker.create(connection=dsn, task_queue="orders", workflow=order_workflow,
                        namespace=namespace)
    client = Client(connection=dsn)
    handle = await client.workflow.start(args=[42.5], task_queue="orders",
                                         workflow_name="order_workflow", namespace=namespace)
    assert await handle.result(timeout=20) == "Processed $42.5"
    assert calls == {"process_payment": 1, "send_email": 1}
    assert await handle.status() == 0
    assert (await handle.describe()).status == "completed"
    state = await handle.state()
    assert state["done"] is True and state["response"] == "Processed $42.5"
    timeline = (await handle.export())["timeline"]
    assert [(s["index"], s["kind"], s["name"]) for s in timeline] == [
        (0, "activity", "process_payment"), (1, "activity", "send_email")]
    queues = {r[0] for r in await sql(f'SELECT DISTINCT queue FROM "{namespace}".steps s '
                                      f'JOIN "{namespace}".tasks t USING (run_id)')}
    assert queues == set()  # every task is gone once the workflow is done


async def greet(name: str) -> str:
    return f"Hello, {name}!"


async def test_start_before_any_worker_then_run(client: Client, dsn: str,
                                                namespace: str) -> None:
    handle = await client.workflow.start(args=["HotMesh"], task_queue="q",
                                         workflow_name=greet, workflow_id="early")
    assert await handle.status() == 1
    with pytest.raises(TimeoutError):
        await handle.result(timeout=0.3)
    await Worker.create(connection=dsn, task_queue="q", workflow=greet, namespace=namespace)
    assert await handle.result(timeout=10) == "Hello, HotMesh!"
    again = client.workflow.get_handle("q", "greet", "early")
    assert await again.result() == "Hello, HotMesh!"


async def test_duplicate_live_id_and_reuse_after_expire(memflow_env: WorkflowEnvironment) -> None:
    client = memflow_env.client
    await client.workflow.start(args=["a"], task_queue="q", workflow_name="greet",
                                workflow_id="dup", expire="1 hour")
    with pytest.raises(DuplicateJobError, match="Duplicate job: dup"):
        await client.workflow.start(args=["b"], task_queue="q", workflow_name="greet",
                                    workflow_id="dup")
    await memflow_env.worker(task_queue="q", workflow=greet)
    h = client.workflow.get_handle("q", "greet", "dup")
    assert await h.result(timeout=10) == "Hello, a!"
    with pytest.raises(DuplicateJobError):  # completed but not expired yet
        await client.workflow.start(args=["b"], task_queue="q", workflow_name="greet",
                                    workflow_id="dup")
    await memflow_env.sleep("61 minutes")  # the environment's clock: no real wait
    h2 = await client.workflow.start(args=["b"], task_queue="q", workflow_name="greet",
                                     workflow_id="dup")
    assert await h2.result(timeout=10) == "Hello, b!"
    assert await h.result() == "Hello, b!"  # a handle binds to the latest run


async def test_unknown_workflow_id_raises_not_found(client: Client) -> None:
    h = client.workflow.get_handle("q", "greet", "nope")
    for call in (h.result(), h.state(), h.describe(), h.export(), h.interrupt()):
        with pytest.raises(WorkflowNotFoundError):
            await call


async def test_bad_input_fails_early_and_writes_nothing(client: Client, namespace: str) -> None:
    bad_values = [math.nan, math.inf, "a\x00b", "\ud800", {1: "x"}, object()]
    for value in bad_values:
        with pytest.raises((TypeError, ValueError), match="args"):
            await client.workflow.start(args=[value], task_queue="q", workflow_name="greet")
    with pytest.raises(ValueError):
        await client.workflow.start(args=[], task_queue="q", workflow_name="greet",
                                    workflow_id="x" * 1001)
    with pytest.raises(ValueError, match="duration"):
        await client.workflow.start(args=[], task_queue="q", workflow_name="greet",
                                    expire="soon")
    with pytest.raises(TypeError):
        await client.workflow.start(args="nope", task_queue="q", workflow_name="greet")
    exists = await sql("SELECT to_regclass(%s)", f'"{namespace}".workflows')
    if exists[0][0] is not None:
        assert await sql(f'SELECT count(*) FROM "{namespace}".workflows') == [(0,)]


async def test_namespace_validation_before_any_sql(dsn: str) -> None:
    for bad in ["Bad", "1abc", "a-b", "x; DROP TABLE y", "", "a" * 64, "pg_x"]:
        with pytest.raises(ValueError, match="namespace"):
            Client(connection=dsn, namespace=bad)
        with pytest.raises(ValueError, match="namespace"):
            await Worker.create(connection=dsn, task_queue="q", workflow=greet, namespace=bad)
    assert await sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'Bad'") == [(0,)]


async def test_connection_forms(dsn: str, namespace: str) -> None:
    forms = [dsn, {"class": Postgres, "options": {"connection_string": dsn}},
             {"class": Postgres, "options": {"conninfo": dsn}}, await Connection.connect(dsn),
             None]
    await Worker.create(connection=dsn, task_queue="q", workflow=greet, namespace=namespace)
    for i, form in enumerate(forms):
        client = Client(connection=form, namespace=namespace)
        h = await client.workflow.start(args=[str(i)], task_queue="q", workflow_name="greet")
        assert await h.result(timeout=10) == f"Hello, {i}!"
    with pytest.raises(TypeError):
        await Connection.connect(42)


async def app_names(dsn: str) -> set[str]:
    rows = await sql("SELECT DISTINCT application_name FROM pg_stat_activity "
                     "WHERE application_name LIKE 'memflow%%'")
    return {r[0] for r in rows}


async def test_connections_are_named(dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="q", workflow=greet, namespace=namespace)
    names = await app_names(dsn)
    assert "memflow-worker" in names and "memflow-listener" in names


@dataclass
class Order:
    sku: str
    qty: int


async def total(order: Order) -> dict:
    assert isinstance(order, Order)
    return {"sku": order.sku, "qty": order.qty * 2}


async def typed_workflow(order: Order) -> Order:
    assert isinstance(order, Order)
    acts = workflow.proxy_activities(activities=[total])
    doubled = await acts.total(order)
    return Order(**doubled)


async def test_dataclass_payloads_round_trip(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="typed", workflow=typed_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=[Order("abc", 2)], task_queue="typed",
                                    workflow_name="typed_workflow")
    assert await h.result(timeout=10) == {"sku": "abc", "qty": 4}


async def echo_activity(value):
    return value


async def echo_workflow(value):
    acts = workflow.proxy_activities(activities={"echo_activity": echo_activity})
    return await acts.echo_activity(value)


async def test_large_and_deep_payloads_round_trip(client: Client, dsn: str,
                                                  namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="echo", workflow=echo_workflow,
                        namespace=namespace)
    big = {"blob": "x" * 3_000_000, "list": list(range(10000)), "uni": "é✓😀"}
    deep: list = []
    node = deep
    for _ in range(2000):
        child: list = []
        node.append(child)
        node = child
    h = await client.workflow.start(args=[big], task_queue="echo", workflow_name="echo_workflow")
    assert await h.result(timeout=30) == big
    h = await client.workflow.start(args=[deep], task_queue="echo", workflow_name="echo_workflow")
    back = await h.result(timeout=30)
    levels = 0
    while back:  # compared iteratively: == itself would recurse too deep
        assert isinstance(back, list) and len(back) == 1
        back = back[0]
        levels += 1
    assert levels == 2000 and back == []


async def failing_activity(kind: str) -> str:
    calls[kind] = calls.get(kind, 0) + 1
    if kind == "fatal":
        raise MemFlowFatalError("do not retry me")
    raise RuntimeError(f"boom {calls[kind]}")


async def retrying_workflow(kind: str, throw: bool):
    acts = workflow.proxy_activities(
        activities=[failing_activity],
        retry_policy={"maximum_attempts": 3, "initial_interval": 0.05,
                      "backoff_coefficient": 2, "throw_on_error": throw})
    return await acts.failing_activity(kind)


async def test_activity_retries_count_attempts_then_fatal(client: Client, dsn: str,
                                                          namespace: str) -> None:
    calls.clear()
    await Worker.create(connection=dsn, task_queue="r", workflow=retrying_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=["plain", True], task_queue="r",
                                    workflow_name="retrying_workflow")
    with pytest.raises(MemFlowFatalError, match="boom 3") as info:
        await h.result(timeout=20)
    assert info.value.code == 598
    assert calls["plain"] == 3  # maximum_attempts counts every attempt

    h = await client.workflow.start(args=["fatal", True], task_queue="r",
                                    workflow_name="retrying_workflow")
    with pytest.raises(MemFlowFatalError, match="do not retry me"):
        await h.result(timeout=20)
    assert calls["fatal"] == 1

    h = await client.workflow.start(args=["quiet", False], task_queue="r",
                                    workflow_name="retrying_workflow")
    result = await h.result(timeout=20)
    assert result["$error"]["code"] == 598 and "boom 3" in result["$error"]["message"]

    failed = await client.workflow.start(args=["plain", True], task_queue="r",
                                         workflow_name="retrying_workflow")
    as_dict = await failed.result(timeout=20, throw_on_error=False)
    assert as_dict["$error"]["code"] == 598


async def test_backoff_delays_follow_the_formula(client: Client, dsn: str,
                                                 namespace: str) -> None:
    from memflow import RetryPolicy

    policy = RetryPolicy.of({"initial_interval": "1s", "backoff_coefficient": 10,
                             "maximum_interval": "120s"})
    assert [policy.delay(k) for k in (1, 2, 3, 4)] == [1, 10, 100, 120]
    with pytest.raises(ValueError):
        RetryPolicy.of({"maximum_attempts": 0})


flaky_runs: dict[str, int] = {}


async def flaky_workflow(key: str) -> str:
    flaky_runs[key] = flaky_runs.get(key, 0) + 1
    if flaky_runs[key] < 3:
        raise ValueError(f"not yet ({flaky_runs[key]})")
    return "finally"


async def test_workflow_retries_per_config_then_597(client: Client, dsn: str,
                                                    namespace: str) -> None:
    flaky_runs.clear()
    await Worker.create(connection=dsn, task_queue="wf", workflow=flaky_workflow,
                        namespace=namespace)
    cfg = {"maximum_attempts": 3, "initial_interval": 0.05, "backoff_coefficient": 1}
    h = await client.workflow.start(args=["ok"], task_queue="wf", workflow_name="flaky_workflow",
                                    config=cfg)
    assert await h.result(timeout=10) == "finally"
    h = await client.workflow.start(args=["never"], task_queue="wf",
                                    workflow_name="flaky_workflow",
                                    config={**cfg, "maximum_attempts": 2})
    with pytest.raises(MemFlowMaxedError, match=r"not yet \(2\)") as info:
        await h.result(timeout=10)
    assert info.value.code == 597
    h = await client.workflow.start(args=["once"], task_queue="wf",
                                    workflow_name="flaky_workflow")
    with pytest.raises(MemFlowMaxedError):  # default: a single attempt
        await h.result(timeout=10)


async def square(x: int) -> int:
    await asyncio.sleep(0.01 * (x % 3))
    return x * x


class MathActivities:
    async def double(self, x: int) -> int:
        return 2 * x


async def parallel_workflow(n: int) -> dict:
    acts = workflow.proxy_activities(activities=[square])
    obj = workflow.proxy_activities(activities=MathActivities)
    squares = await asyncio.gather(*[acts.square(i) for i in range(n)])
    doubled = await workflow.all(obj.double(1), obj.double(2))
    ctx = workflow.get_context()
    r1, r2 = workflow.random(), workflow.random()
    return {"sum": sum(squares), "doubled": doubled, "id": ctx["workflow_id"],
            "name": ctx.workflow_name, "queue": ctx["task_queue"], "ns": ctx["namespace"],
            "random": [r1, r2]}


async def test_gather_random_and_context(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="par", workflow=parallel_workflow,
                        namespace=namespace, options={"cache_size": 0})
    h = await client.workflow.start(args=[20], task_queue="par", workflow_name="parallel_workflow",
                                    workflow_id="par-1")
    result = await h.result(timeout=20)
    assert result["sum"] == sum(i * i for i in range(20))
    assert result["doubled"] == [2, 4]
    assert (result["id"], result["name"], result["queue"], result["ns"]) == (
        "par-1", "parallel_workflow", "par", namespace)
    r1, r2 = result["random"]
    assert 0 <= r1 < 1 and 0 <= r2 < 1 and r1 != r2
    timeline = (await h.export())["timeline"]
    assert len(timeline) == 22


async def unknown_activity_workflow() -> str:
    acts = workflow.proxy_activities(retry_policy={"maximum_attempts": 2,
                                                   "initial_interval": 0.05})
    return await acts.no_such_activity()


async def test_unknown_activity_is_a_clear_retryable_error(client: Client, dsn: str,
                                                           namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="u", workflow=unknown_activity_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=[], task_queue="u",
                                    workflow_name="unknown_activity_workflow")
    with pytest.raises(MemFlowFatalError, match="unknown activity 'no_such_activity'"):
        await h.result(timeout=10)


async def slow_activity(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slow"


async def timeout_workflow(seconds: float) -> str:
    acts = workflow.proxy_activities(activities=[slow_activity], start_to_close_timeout=0.2,
                                     retry_policy={"maximum_attempts": 2,
                                                   "initial_interval": 0.05})
    return await acts.slow_activity(seconds)


async def test_start_to_close_timeout(client: Client, dsn: str, namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="t", workflow=timeout_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=[5], task_queue="t", workflow_name="timeout_workflow")
    with pytest.raises(MemFlowFatalError, match="timed out"):
        await h.result(timeout=10)
    h = await client.workflow.start(args=[0.01], task_queue="t",
                                    workflow_name="timeout_workflow")
    assert await h.result(timeout=10) == "slow"


async def bad_result_workflow() -> object:
    return {"x": math.nan}


async def test_non_encodable_result_fails_the_workflow(client: Client, dsn: str,
                                                       namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="b", workflow=bad_result_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=[], task_queue="b", workflow_name="bad_result_workflow")
    with pytest.raises(MemFlowFatalError, match="workflow result"):
        await h.result(timeout=10)


async def sequential_workflow(n: int) -> int:
    acts = workflow.proxy_activities(activities=[square])
    total = 0
    for i in range(n):
        total += await acts.square(i % 3)
    return total


async def test_two_workers_compete_without_running_a_step_twice(client: Client, dsn: str,
                                                                namespace: str) -> None:
    calls.clear()

    async def counted(x: int) -> int:
        calls[f"c{x}"] = calls.get(f"c{x}", 0) + 1
        return x

    await Worker.create(connection=dsn, task_queue="two", workflow=sequential_workflow,
                        namespace=namespace, activities={"square": counted})
    await Worker.create(connection=dsn, task_queue="two", workflow=sequential_workflow,
                        namespace=namespace, activities={"square": counted})
    handles = [await client.workflow.start(args=[10], task_queue="two",
                                           workflow_name="sequential_workflow")
               for _ in range(20)]
    results = await asyncio.gather(*[h.result(timeout=30) for h in handles])
    assert results == [sum(i % 3 for i in range(10))] * 20
    assert sum(calls.values()) == 200
    steps = await sql(f'SELECT count(*) FROM "{namespace}".steps')
    assert steps == [(200,)]


async def test_shutdown_is_clean_and_idempotent(dsn: str, namespace: str) -> None:
    worker = await Worker.create(connection=dsn, task_queue="s", workflow=greet,
                                 namespace=namespace)
    runner = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await MemFlow.shutdown()
    await asyncio.wait_for(runner, 5)
    await MemFlow.shutdown()


async def test_unreachable_database_fails_fast_with_a_clear_error(namespace: str) -> None:
    client = Client(connection="postgresql://root@127.0.0.1:1/nowhere", namespace=namespace)
    with pytest.raises(ConnectionError, match="cannot connect to PostgreSQL"):
        await asyncio.wait_for(client.workflow.start(args=[], task_queue="q",
                                                     workflow_name="greet"), 30)


async def changed_code(flag: str) -> str:
    acts = workflow.proxy_activities(activities=[greet_activity, other_activity])
    if flag == "a":
        return await acts.greet_activity("x")
    return await acts.other_activity("x")


async def greet_activity(name: str) -> str:
    return name


async def other_activity(name: str) -> str:
    return name


async def test_a_renamed_activity_is_detected_on_replay(client: Client, dsn: str,
                                                         namespace: str) -> None:
    from memflow.store import NamespaceStore, Store

    await Worker.create(connection=dsn, task_queue="nd", workflow=changed_code,
                        namespace=namespace,
                        options={"cache_size": 0, "on_nondeterminism": "fail"})
    h = await client.workflow.start(args=["a"], task_queue="nd", workflow_name="changed_code")
    assert await h.result(timeout=10) == "x"
    # rewrite the recorded history as if the code had called another activity
    store = await Store.get(dsn)
    ns = await NamespaceStore.open(store, namespace)
    meta = await ns.workflows.get(h.workflow_id)
    assert meta is not None
    await sql(f'UPDATE "{namespace}".workflows SET status = %s, args = %s::jsonb',
              "running", '["b"]')
    await sql(f'INSERT INTO "{namespace}".tasks (queue, kind, run_id) VALUES (%s, %s, %s)',
              "nd", "w", meta["run_id"])
    await sql("SELECT pg_notify(%s, %s)", namespace, "q:nd")
    h2 = client.workflow.get_handle("nd", "changed_code", h.workflow_id)

    async def failed() -> bool:
        return (await h2.describe()).status == "failed"
    from tests.support import eventually
    await eventually(failed)
    with pytest.raises(MemFlowFatalError, match="deterministic"):
        await h2.result()


async def test_a_500_step_sequential_workflow_completes(client: Client, dsn: str,
                                                        namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="long", workflow=sequential_workflow,
                        namespace=namespace)
    h = await client.workflow.start(args=[500], task_queue="long",
                                    workflow_name="sequential_workflow")
    assert await h.result(timeout=120) == sum((i % 3) ** 2 for i in range(500))
    assert await sql(f'SELECT count(*), max(idx) FROM "{namespace}".steps') == [(500, 499)]
