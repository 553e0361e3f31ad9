"""The typed command records: each kind's stored name and immediacy, immutability, and a store
builder for every kind (a new kind without one fails here, not in a workflow)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from memflow import commands as durable
from memflow.store import Thread
from memflow.store.passes import command_statements

THREAD = Thread("wf", "run", "", "q")
CHILD: dict[str, Any] = dict(
    workflow_id="c", run_id="run//0", workflow_name="child", task_queue="q", args_json="[]",
    entity_type=None, search_json="{}", config_json="{}", signal_in=None, expire_seconds=1.0,
    trace_json=None, duplicate_error_json="{}")
HOOK: dict[str, Any] = dict(target_workflow_id="wf", thread_path=".0", workflow_name="h",
                            task_queue="q", args_json="[]", closed_error_json="{}")

SAMPLES: list[tuple[durable.Command, str, bool, str | None]] = [
    (durable.ActivityCall(0, "act", "q-activity", "{}"), "activity", False, "act"),
    (durable.Sleep(0, 1.5), "sleep", False, None),
    (durable.WaitForSignal(0, "sig", 2.0, "{}"), "wait", True, "sig"),
    (durable.SendSignal(0, "sig", "1"), "signal", True, "sig"),
    (durable.StartChild(0, **CHILD), "start_child", True, "c"),
    (durable.ExecChild(0, **CHILD), "exec_child", False, "c"),
    (durable.StartHook(0, **HOOK), "hook", True, None),
    (durable.ExecHook(0, **HOOK, signal_id="s"), "exec_hook", True, "s"),
    (durable.Interrupt(0, "wf", descend=False, error_json="{}"), "interrupt", True, "wf"),
    (durable.Emit(0, "a,b", '{"a": 1, "b": 2}'), "emit", True, "a,b"),
    (durable.Trace(0), "trace", True, None),
    (durable.Now(0, datetime(2026, 1, 1, tzinfo=UTC)), "now", False, None),
    (durable.PatchMarker(0, "fix-1"), "patch", False, "fix-1"),
    (durable.ContinueAsNew(0, "run2", "wf", "q", "[]"), "continue_as_new", False, None),
    (durable.EntityCall(0, durable.EntityOp("get", "entity.get()")), "entity", True, "get"),
    (durable.SearchCall(0, durable.SearchOp("get", "search.get('k')", key="k"), "get"),
     "search", True, "get"),
    (durable.AcceptUpdate(0, "u1", "add", "[1]", 3), "update", False, "add"),
    (durable.FinishUpdate(0, "u1", "add", "done", "2"), "update_done", False, "add"),
]


@pytest.mark.parametrize(("command", "kind", "immediate", "name"), SAMPLES,
                         ids=[s[1] for s in SAMPLES])
def test_each_kind_is_stored_as_before_and_has_a_builder(command: durable.Command, kind: str,
                                                         immediate: bool,
                                                         name: str | None) -> None:
    assert command.kind == kind
    assert command.immediate is immediate
    assert command.step_name == name
    statements = command_statements(THREAD, command, "ns")
    assert statements and all(isinstance(sql, str) for sql, _ in statements)
    params = statements[-1][1]
    assert params.get("kind", kind) == kind
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.idx = 1  # type: ignore[misc]


def test_every_command_class_is_sampled() -> None:
    # slots=True dataclasses are rebuilt: keep the classes the module exports
    concrete = {c for c in _subclasses(durable.Command)
                if "kind" in vars(c) and getattr(durable, c.__name__, None) is c}
    assert concrete == {type(s[0]) for s in SAMPLES}


def test_a_local_lease_reaches_the_activity_task() -> None:
    plain = durable.ActivityCall(3, "act", "q-activity", "{}")
    leased = plain.leased(durable.LocalLease("w1", 30.0))
    assert leased == dataclasses.replace(plain, leased_to=durable.LocalLease("w1", 30.0))
    [(_, params)] = command_statements(THREAD, leased, "ns")
    assert (params["owner"], params["lease"]) == ("w1", 30.0)
    [(_, params)] = command_statements(THREAD, plain, "ns")
    assert (params["owner"], params["lease"]) == (None, None)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found
