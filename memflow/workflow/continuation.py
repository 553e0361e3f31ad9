"""``workflow.continue_as_new()``: end this run and go on in a new run of the same workflow id,
with a fresh, empty history (how a workflow that runs for ever keeps its replays short)."""

from __future__ import annotations

from typing import Any, NoReturn

from memflow import payload
from memflow.engine.thread import current_thread
from memflow.errors import ContinueAsNewError
from memflow.ids import check_queue, function_name


def continue_as_new(*args: Any, workflow_name: Any = None,
                    task_queue: str | None = None) -> NoReturn:
    """End the run with status ``"continued"`` and start a new run of the same workflow id
    with ``args`` (the same function on the same queue, unless ``workflow_name`` — a function
    or its registered name — or ``task_queue`` says otherwise). Never returns.

    The new run starts in the same transaction, with an empty history; the entity and search
    fields carry over, and so do signals sent meanwhile. ``handle.result()`` (on a handle from
    ``start()``, or from ``get_handle()`` without ``run_id``) follows the chain to the last
    run's result; ``workflow.info()`` of the new run gives ``first_run_id`` and
    ``continued_from``. Durable calls made but not awaited before it are dropped. Only the
    main function of a workflow may call it (not a hook)."""
    thread = current_thread("workflow.continue_as_new()")
    if thread.ref.dim != "":
        raise RuntimeError("workflow.continue_as_new() can only be called by a workflow's main "
                           "function, not by a hook thread")
    name = function_name(workflow_name, "continue_as_new: workflow_name") \
        if workflow_name is not None else None
    queue = check_queue(task_queue, "continue_as_new: task_queue") \
        if task_queue is not None else None
    args_json = payload.dumps(list(args), "arguments of continue_as_new")
    raise ContinueAsNewError(args_json, name, queue)
