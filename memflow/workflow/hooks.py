"""Hooks: extra threads of a running workflow, with their own counter, sharing its entity."""

from __future__ import annotations

import asyncio
from typing import Any

from memflow import payload
from memflow.commands import ExecHook, StartHook
from memflow.engine.thread import current_thread
from memflow.ids import check_id, check_queue, function_name


def _hook_call(kind: str, task_queue: str | None, workflow_name: Any, args: Any,
               workflow_id: str | None, entity: str | None,
               signal_id: str | None = None) -> asyncio.Future[Any]:
    thread = current_thread(f"workflow.{kind}()")
    name = function_name(workflow_name, f"{kind}: workflow_name")
    if task_queue is None and entity is None and name == thread.name and (
            workflow_id is None or workflow_id == thread.ref.workflow_id):
        raise ValueError(f"{kind}: the hook targets its own thread ({name!r}) with no "
                         "task_queue or entity: potential infinite loop")
    if not isinstance(args, list | tuple):
        raise TypeError(f"{kind}: args must be a list")
    if task_queue is not None:
        check_queue(task_queue, f"{kind}: task_queue")
    target = workflow_id or thread.ref.workflow_id
    check_id(target, "workflow_id")
    if signal_id is not None:
        check_id(signal_id, "signal_id")
    idx = thread.counter
    same_run = target == thread.ref.workflow_id
    dim = f"{thread.ref.dim}.{idx}" if same_run else f"@{thread.ref.run_id}{thread.ref.dim}.{idx}"
    closed = {"message": f"workflow {target} does not accept hooks (not running, or "
                         "signal_in=False)", "code": 598, "type": "MemFlowFatalError"}
    record = ExecHook if kind == "exec_hook" else StartHook
    return thread.call(record(
        idx, target_workflow_id=target, thread_path=dim, workflow_name=name,
        task_queue=task_queue or thread.ref.task_queue,
        args_json=payload.dumps(list(args), f"arguments of hook {name!r}"),
        closed_error_json=payload.dumps(closed), signal_id=signal_id))


def hook(task_queue: str | None = None, workflow_name: Any = None, args: Any = (),
         workflow_id: str | None = None,
         entity: str | None = None) -> asyncio.Future[Any]:
    """Run ``workflow_name`` as a new thread of this (or another) workflow; returns at once
    with the hook's thread id. The hook shares the workflow's entity and search fields."""
    return _hook_call("hook", task_queue, workflow_name, args, workflow_id, entity)


def exec_hook(task_queue: str | None = None, workflow_name: Any = None, args: Any = (),
              workflow_id: str | None = None, entity: str | None = None,
              signal_id: str | None = None) -> asyncio.Future[Any]:
    """Run a hook and wait for it: returns the hook function's return value and raises its
    error. With ``signal_id``, the signal of that id, if the hook sends it first, is returned
    instead (the seed system's convention)."""
    return _hook_call("exec_hook", task_queue, workflow_name, args, workflow_id, entity,
                      signal_id)


async def exec_hook_batch(hooks: list[dict[str, Any]]) -> dict[str, Any]:
    """Run several hooks in parallel: ``[{"key": k, "options": {...}}, ...]`` → ``{k: result}``."""
    if not isinstance(hooks, list):
        raise TypeError("exec_hook_batch takes a list of {'key', 'options'} dicts")
    keys: list[str] = []
    calls = []
    for item in hooks:
        if not isinstance(item, dict) or "key" not in item or not isinstance(
                item.get("options"), dict):
            raise TypeError("each exec_hook_batch item is {'key': str, 'options': dict}")
        keys.append(item["key"])
        calls.append(exec_hook(**item["options"]))
    results = await asyncio.gather(*calls)
    return dict(zip(keys, results, strict=True))
