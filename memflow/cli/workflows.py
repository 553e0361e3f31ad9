"""Commands that act on workflows: ``start``, ``result``, ``signal``, ``interrupt``, ``cancel``,
``terminate``, ``hook``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from memflow.cli.common import (
    CliError,
    Env,
    client_for,
    common_options,
    duration,
    json_args,
    json_list,
    json_value,
    note,
    open_namespace,
    out,
    run,
    to_json,
)
from memflow.cli.progress import progress, stderr_tty
from memflow.errors import MemFlowCancelledError, MemFlowError, MemFlowInterruptedError

FINISHED = ("completed", "failed", "interrupted", "cancelled", "timed_out")


def _arguments(arg: list[Any], args: list[Any] | None) -> list[Any]:
    if arg and args is not None:
        raise click.UsageError("give either --arg (repeatable) or --args, not both")
    return list(args) if args is not None else list(arg)


def _search(values: tuple[str, ...]) -> dict[str, Any] | None:
    if not values:
        return None
    data: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"--search expects KEY=VALUE, got {item!r}")
        data[key] = value
    return {"data": data}


def arg_options(fn: Any) -> Any:
    """``--arg JSON`` (repeatable) and ``--args JSON_LIST``."""
    fn = click.option("--args", "args_list", callback=json_list, metavar="JSON_LIST",
                      help="All arguments as one JSON list (instead of --arg).")(fn)
    return click.option("--arg", "arg", multiple=True, callback=json_args, metavar="JSON",
                        help="One argument, as JSON (repeat for each; strings need quotes: "
                             "'\"Ann\"').")(fn)


@click.command("start", short_help="Start a workflow; print its id (or result with --wait).")
@click.argument("workflow_name", metavar="NAME")
@click.option("--task-queue", "-q", required=True, help="The queue its workers serve.")
@arg_options
@click.option("--id", "workflow_id", help="Workflow id [default: a new guid].")
@click.option("--search", "search", multiple=True, metavar="KEY=VALUE",
              help="An initial search field (repeatable).")
@click.option("--entity", help="Entity type name of the workflow's memory.")
@click.option("--expire", callback=duration, metavar="DURATION",
              help="How long after completion before the id may be reused [default: 1s].")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", callback=duration, metavar="DURATION",
              help="With --wait: give up waiting after this long (the workflow goes on).")
@common_options
def start_command(env: Env, workflow_name: str, task_queue: str, arg: list[Any],
                  args_list: list[Any] | None, workflow_id: str | None, search: tuple[str, ...],
                  entity: str | None, expire: float | None, wait: bool,
                  timeout: float | None) -> None:
    """Start workflow NAME on a task queue; prints its id (or, with --wait, its result)."""
    args = _arguments(arg, args_list)
    search_doc = _search(search)
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait")

    async def go() -> tuple[str, Any]:
        client = await client_for(env, create=True)
        handle = await client.workflow.start(
            args=args, task_queue=task_queue, workflow_name=workflow_name,
            workflow_id=workflow_id, search=search_doc, entity=entity, expire=expire)
        if not wait:
            return handle.workflow_id, None
        note(f"started workflow {handle.workflow_id}")
        return handle.workflow_id, await _wait(handle, timeout)

    wf_id, result = run(env, go())
    out(to_json(result) if wait else wf_id)


async def _wait(handle: Any, timeout: float | None) -> Any:
    """The result of ``handle``, with a status line while waiting; failures raise CliError."""
    if not stderr_tty():
        note(f"waiting for workflow {handle.workflow_id} to finish…")
    try:
        with progress(f"waiting for workflow {handle.workflow_id}"):
            return await handle.result(timeout=timeout)
    except MemFlowInterruptedError as exc:
        raise CliError(f"workflow {handle.workflow_id} was interrupted: {exc.message}") from exc
    except MemFlowCancelledError as exc:
        raise CliError(f"workflow {handle.workflow_id} was cancelled: {exc.message}") from exc
    except MemFlowError as exc:
        if type(exc).__name__ == "WorkflowNotFoundError":
            raise
        raise CliError(f"workflow {handle.workflow_id} failed: {type(exc).__name__} "
                       f"({exc.code}): {exc.message}") from exc
    except TimeoutError as exc:
        raise CliError(f"workflow {handle.workflow_id} did not finish within "
                       f"{timeout:g}s (it goes on running)") from exc


@click.command("result", short_help="Print a workflow's result as JSON (waits for it).")
@click.argument("workflow_id")
@click.option("--timeout", callback=duration, metavar="DURATION",
              help="Give up waiting after this long (the workflow goes on).")
@click.option("--no-wait", is_flag=True, help="Fail at once if the workflow is not finished.")
@common_options
def result_command(env: Env, workflow_id: str, timeout: float | None, no_wait: bool) -> None:
    """Print a workflow's result as JSON, waiting for it to finish.

    A failed or interrupted workflow prints its error and exits with code 1.
    """
    async def go() -> Any:
        client = await client_for(env)
        handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
        if no_wait:
            status = (await handle.describe()).status
            if status not in FINISHED:
                raise CliError(f"workflow {workflow_id} is {status}: no result yet")
        return await _wait(handle, timeout)

    out(to_json(run(env, go())))


@click.command("signal", short_help="Send a signal with JSON data.")
@click.argument("signal_id")
@click.argument("data", required=False, default="null", metavar="[JSON]", callback=json_value)
@common_options
def signal_command(env: Env, signal_id: str, data: Any) -> None:
    """Send signal SIGNAL_ID with JSON data (default null) to the workflows waiting for it.

    A signal nobody waits for yet is kept for the first wait_for of that id.
    """
    async def go() -> None:
        client = await client_for(env, create=True)
        await client.workflow.signal(signal_id, data, namespace=env.namespace)

    run(env, go())
    out(f"sent signal {signal_id}")


@click.command("interrupt", short_help="Stop a running workflow.")
@click.argument("workflow_id")
@click.option("--reason", help="Why (becomes the error message of the workflow).")
@click.option("--descend", is_flag=True, help="Also interrupt its live child workflows.")
@click.option("--no-throw", is_flag=True,
              help="Let result() return null instead of raising MemFlowInterruptedError.")
@common_options
def interrupt_command(env: Env, workflow_id: str, reason: str | None, descend: bool,
                      no_throw: bool) -> None:
    """Stop a running workflow now."""
    async def go() -> None:
        client = await client_for(env)
        handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
        status = (await handle.describe()).status
        if status in FINISHED:
            raise CliError(f"workflow {workflow_id} is already {status}: nothing to interrupt")
        await handle.interrupt(reason=reason, throw=not no_throw, descend=descend)

    run(env, go())
    out(f"interrupted workflow {workflow_id}")


@click.command("cancel", short_help="Ask a running workflow to cancel (cooperatively).")
@click.argument("workflow_id")
@click.option("--reason", help="Why (the message of the CancelledError it receives).")
@common_options
def cancel_command(env: Env, workflow_id: str, reason: str | None) -> None:
    """Ask a running workflow to cancel: asyncio.CancelledError is raised where it waits, its
    activities are abandoned and its exec_child children cancelled. It may clean up and
    finish; if not, it ends "cancelled". Cancelling twice is the same as once."""
    run(env, _stop_live(env, workflow_id, "cancel", lambda h: h.cancel(reason=reason)))
    out(f"asked workflow {workflow_id} to cancel")


@click.command("terminate", short_help="End a running workflow now (no more of its code runs).")
@click.argument("workflow_id")
@click.option("--reason", help="Why (becomes the error message of the workflow).")
@common_options
def terminate_command(env: Env, workflow_id: str, reason: str | None) -> None:
    """End a running workflow at once: status "interrupted", its result raises
    MemFlowInterruptedError (410)."""
    run(env, _stop_live(env, workflow_id, "terminate", lambda h: h.terminate(reason=reason)))
    out(f"terminated workflow {workflow_id}")


async def _stop_live(env: Env, workflow_id: str, verb: str,
                     act: Callable[[Any], Awaitable[Any]]) -> None:
    """``act(handle)`` on the running workflow ``workflow_id``; a clear error when it has
    already finished (nothing to ``verb``)."""
    client = await client_for(env)
    handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
    status = (await handle.describe()).status
    if status in FINISHED:
        raise CliError(f"workflow {workflow_id} is already {status}: nothing to {verb}")
    await act(handle)


@click.command("unpark", short_help="Retry the parked (poison) tasks of a workflow.")
@click.argument("workflow_id")
@common_options
def unpark_command(env: Env, workflow_id: str) -> None:
    """Make the tasks of a workflow that were parked after repeated engine failures visible
    again (after fixing the cause, e.g. deploying the missing workflow); `memflow show ID`
    lists them."""
    async def go() -> int:
        ns = await open_namespace(env)
        count: int = await ns.poison.unpark(workflow_id)
        return count

    n = run(env, go())
    if not n:
        raise CliError(f"workflow {workflow_id} has no parked tasks")
    out(f"unparked {n} task{'s' if n != 1 else ''} of workflow {workflow_id}")


@click.command("hook", short_help="Run a function as a new thread of a workflow.")
@click.argument("workflow_id")
@click.argument("workflow_name", metavar="NAME")
@click.option("--task-queue", "-q",
              help="The queue whose workers run NAME [default: the workflow's own queue].")
@arg_options
@common_options
def hook_command(env: Env, workflow_id: str, workflow_name: str, task_queue: str | None,
                 arg: list[Any], args_list: list[Any] | None) -> None:
    """Run function NAME as a new thread (hook) of workflow WORKFLOW_ID, sharing its entity."""
    args = _arguments(arg, args_list)

    async def go() -> Any:
        client = await client_for(env)
        hook = getattr(client.workflow, "hook", None)
        if hook is None:
            raise CliError("this version of memflow has no client.workflow.hook")
        queue = task_queue
        if queue is None:
            handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
            queue = (await handle.describe()).task_queue
        return await hook(workflow_id=workflow_id, task_queue=queue,
                          workflow_name=workflow_name, args=args, namespace=env.namespace)

    returned = run(env, go())
    out(f"hooked {workflow_name} into workflow {workflow_id}"
        + (f" ({returned})" if isinstance(returned, str) and returned else ""))
