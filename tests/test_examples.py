"""Every program in examples/ runs green, started the way its docstring says."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from memflow import Client, MemFlow, workflow
from memflow.testing import Replayer
from tests.support import DSN, sql

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

try:
    from memflow import Entity  # noqa: F401
    HAS_ENTITY = hasattr(workflow, "entity")
except ImportError:
    HAS_ENTITY = False
HAS_HOOKS = all(hasattr(workflow, n) for n in ("hook", "exec_hook", "exec_hook_batch"))

# example file -> lines its output must contain
CASES: dict[str, list[str]] = {
    "entity_memory.py": [
        'entity returned by the workflow: {"logins": 2, "name": "Ada", "plan": "free", '
        '"preferences": {"language": "en", "notifications": true, "theme": "light"}, '
        '"tags": ["beta-tester"], "user_id": "user-',
        "Entity.find('user', {user_id}):   ['user-",
    ],
    "hooks.py": ['"approved_by": "ops-team"', '"verdict": "go"',
                 '"optimist": "solar roofs: the upside is large"',
                 '"skeptic": "solar roofs: the risks are real"'],
    "durable_activities.py": [
        '"total_eur": 53.77', '"audit": "audit service is down (total 59.75)"',
        "attempts per quote (2 retries each): {'ACME': 3, 'GLOBEX': 3, 'INITECH': 3}",
        "durable steps: ['0:fetch_quote', '1:fetch_quote', '2:fetch_quote', '3:convert', "
        "'4:audit']"],
    "activity_registration.py": ["order result: Processed $99.50",
                                 "emails sent:  ['to customer@example.com: Order order-"],
    "child_workflows.py": [
        '"packed": [{"boxes": 3, "item": "widgets"}, {"boxes": 1, "item": "gadgets"}, '
        '{"boxes": 4, "item": "gizmos"}]', "receipt child: receipt for order-",
        "children: ['pack_item=completed', 'pack_item=completed', 'pack_item=completed', "
        "'send_receipt=completed']"],
    "interceptors.py": [
        "checkout result: reserved book, charged 12.00", "<id>: checkout started",
        "<id>: completed with 'reserved book, charged 12.00'",
        "activities seen by the activity interceptor: ['audit_log', 'reserve', 'charge', "
        "'audit_log']"],
    "nightly_report.py": [
        "schedule nightly-report: cron 0 3 * * * in Europe/Paris, overlap skip",
        "every next run is at 03:00 local: True",
        "triggered run: report built from 3 orders (total 59.75 EUR)",
        "run id matches its tick: True | status: completed"],
    "flow_control.py": ["payment calls at once, at most: 2", "a waiting order is: pending",
                        "order of the waiting orders: ['vip-1', 'vip-2', 'regular-1', "
                        "'regular-2']", "shop queue: 1 at once, 0 running",
                        "debounced burst: reindexed v3"],
    "order_messages.py": [
        'status at first: {"customer": "Ada", "items": 0, "stage": "open", "total": 0}',
        'after add_item: {"customer": "Ada", "items": 1, "stage": "open", "total": 10.0}',
        "accepted update: True",
        'its result: {"customer": "Ada", "items": 2, "stage": "open", "total": 24.5}',
        "rejected: we do not sell 'unicorn'",
        'checkout: {"customer": "Ada", "items": 2, "stage": "checked out", "total": 24.5}',
        "order result: [('widget', 4), ('gizmo', 2)] 24.5",
        'still answers queries when finished: {"customer": "Ada", "items": 2, '
        '"stage": "checked out", "total": 24.5}'],
    "booking_saga.py": [
        'saga result: {"status": "cancelled by the traveller", "trip": "Lisbon", "undone": '
        '["cancelled hotel in Lisbon", "cancelled flight to Lisbon"]}',
        "saga status: completed", "payment told to stop: True",
        "cancelling again changes nothing: completed", "uncompensated trip: cancelled 499",
        "approval never came: timed_out 596"],
    "safe_deploys.py": [
        "period 1's run: continued | period 2's run continued from it: True",
        "bad deploy: status running | NonDeterminismError at step 0 recorded charge requested "
        "send_receipt", "result: acme: charged period 3",
        "activity calls: {'charge': 3, 'receipt': 1}",
        "period 2's history replays with v1: ok",
        "period 2's history replays with v2 unsafe: no, diverges at step 0",
        "period 2's history replays with v2 patched: ok"],
    "poller.py": ["first poll started: True", "second poll while the first runs: skipped",
                  "poll result: processed 2 items", "ticks skipped so far >= 1: True",
                  "next polls 10 s apart: True"],
}

SKIPS = {
    "entity_memory.py": pytest.mark.skipif(
        not HAS_ENTITY, reason="needs workflow.entity / memflow.Entity (entity memory is "
                               "not implemented yet)"),
    "hooks.py": pytest.mark.skipif(
        not HAS_HOOKS, reason="needs workflow.hook / exec_hook / exec_hook_batch (hooks are "
                              "not implemented yet)"),
}


def test_there_is_one_example_per_seed_feature() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=SKIPS.get(n, ())) for n in CASES])
async def test_example_runs(name: str, namespace: str) -> None:
    env = dict(os.environ, MEMFLOW_DATABASE_URL=DSN, MEMFLOW_NAMESPACE=namespace)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / name), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-3000:]
    for expected in CASES[name]:
        assert expected in text, (expected, text)
    await _replay_every_run(name, namespace)


# what an example registers in its main() that its workflows' replays need
REPLAY_SETUP = {"interceptors.py": lambda m: MemFlow.register_interceptor(m.AuditInterceptor())}
# the name an example's runs are recorded under, when its worker registers a dict
REPLAY_NAMES = {"safe_deploys.py": {"billing": "billing_v2"}}


async def _replay_every_run(name: str, namespace: str) -> None:
    """Every run the example made (current and archived), fetched as a history, round-tripped
    through JSON and replayed offline against the example's code without a divergence."""
    module = _load(EXAMPLES / name)
    functions = {n: f for n, f in vars(module).items()
                 if inspect.iscoroutinefunction(f) and n != "main"}
    functions.update({k: functions[v] for k, v in REPLAY_NAMES.get(name, {}).items()})
    REPLAY_SETUP.get(name, lambda _m: None)(module)
    runs = await sql(f'SELECT workflow_id, run_id FROM "{namespace}".workflows UNION ALL '
                     f'SELECT workflow_id, run_id FROM "{namespace}".runs')
    assert runs
    client = Client(connection=DSN, namespace=namespace)
    histories = [json.loads(json.dumps(await client.workflow.get_handle(
        workflow_id=wid, run_id=rid).fetch_history())) for wid, rid in runs]
    results = await Replayer(functions).replay_many(histories)
    assert all(r.error is None and not r.skipped for r in results)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
