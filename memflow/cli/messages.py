"""Message passing from the command line: ``memflow query`` and ``memflow update``."""

from __future__ import annotations

import json
from typing import Any

import click

from memflow.cli.common import (
    CliError,
    Env,
    client_for,
    common_options,
    duration,
    out,
    run,
    to_json,
)
from memflow.errors import QueryFailedError, UpdateFailedError, UpdateRejectedError


def _values(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    """Each ARG as JSON, or as a plain string when it is not JSON (``apple`` = ``'"apple"'``)."""
    parsed = []
    for text in values:
        try:
            parsed.append(json.loads(text))
        except ValueError:
            parsed.append(text)
    return parsed


@click.command("query", short_help="Ask a workflow a query; print the answer as JSON.")
@click.argument("workflow_id")
@click.argument("name")
@click.argument("args", nargs=-1, callback=_values)
@click.option("--timeout", callback=duration, metavar="DURATION", default="10s",
              show_default=True, help="Give up when no worker answers within this long.")
@common_options
def query_command(env: Env, workflow_id: str, name: str, args: list[Any],
                  timeout: float | None) -> None:
    """Ask workflow WORKFLOW_ID the query NAME with ARGS (each JSON, or a plain string).

    A worker of the workflow's queue answers from its current state; nothing is recorded.
    """
    async def go() -> Any:
        client = await client_for(env)
        handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
        try:
            return await handle.query(name, *args, timeout=timeout)
        except QueryFailedError as exc:
            raise CliError(f"query {name!r} failed: {exc.message}") from exc
        except TimeoutError as exc:
            raise CliError(str(exc)) from exc

    out(to_json(run(env, go())))


@click.command("update", short_help="Send a workflow an update; print its result as JSON.")
@click.argument("workflow_id")
@click.argument("name")
@click.argument("args", nargs=-1, callback=_values)
@click.option("--update-id", help="Id of the update: sending the same id again runs it once.")
@click.option("--no-wait", is_flag=True,
              help="Return once the update is accepted; print its update id.")
@click.option("--timeout", callback=duration, metavar="DURATION",
              help="Give up waiting for the result after this long (the update goes on).")
@common_options
def update_command(env: Env, workflow_id: str, name: str, args: list[Any],
                   update_id: str | None, no_wait: bool, timeout: float | None) -> None:
    """Send workflow WORKFLOW_ID the update NAME with ARGS (each JSON, or a plain string) and
    print the handler's result (with --no-wait, the update id once it is accepted).

    A refused update (its validator raised) or a failed handler exits with code 1.
    """
    async def go() -> Any:
        client = await client_for(env)
        handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
        try:
            uh = await handle.start_update(name, *args, update_id=update_id)
            if no_wait:
                return uh.update_id
            return await uh.result(timeout=timeout)
        except UpdateRejectedError as exc:
            raise CliError(f"update {name!r} was rejected: {exc.message}") from exc
        except UpdateFailedError as exc:
            raise CliError(exc.message) from exc
        except TimeoutError as exc:
            raise CliError(str(exc)) from exc

    result = run(env, go())
    out(result if no_wait else to_json(result))
