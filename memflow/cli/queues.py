"""``memflow queue configure|describe|list``: flow control on task queues."""

from __future__ import annotations

from typing import Any

import click

from memflow.cli import render
from memflow.cli.common import (
    Env,
    client_for,
    common_options,
    out,
    print_listing,
    print_record,
    run,
    to_json,
)


@click.group("queue", short_help="Limit and inspect task queues (flow control).")
def queue_group() -> None:
    """Flow control on task queues: concurrency, per-key concurrency and rate limits, held by
    every worker's claim (docs/flow-control.md). A workflow queue ("orders") caps running
    workflows, an activity queue ("payment-activity") running activity attempts."""


def _rate(_ctx: click.Context, _param: click.Parameter,
          value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    count, sep, period = value.partition("/")
    try:
        return int(count.strip()), (period.strip() or "1 second") if sep else "1 second"
    except ValueError:
        raise click.BadParameter(f"{value!r}: give COUNT/PERIOD, e.g. '100/1 minute'") from None


def limits_text(limits: dict[str, Any]) -> str:
    """The limits of a queue in a few words (``-`` when it has none)."""
    parts = []
    if limits.get("concurrency") is not None:
        parts.append(f"concurrency {limits['concurrency']}")
    if limits.get("per_key_concurrency") is not None:
        parts.append(f"per key {limits['per_key_concurrency']}")
    if limits.get("rate_limit") is not None:
        count, seconds = limits["rate_limit"]
        parts.append(f"{count} per {render.seconds(seconds)}")
    return ", ".join(parts) or "-"


@queue_group.command("configure", short_help="Set the limits of a queue.")
@click.argument("task_queue")
@click.option("--concurrency", type=int, help="At most this many running at once.")
@click.option("--per-key-concurrency", type=int,
              help="At most this many running at once per concurrency key.")
@click.option("--rate-limit", callback=_rate, metavar="COUNT/PERIOD",
              help="At most COUNT starts per sliding PERIOD, e.g. '100/1 minute'.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@common_options
def configure_command(env: Env, task_queue: str, concurrency: int | None,
                      per_key_concurrency: int | None, rate_limit: tuple[int, str] | None,
                      as_json: bool) -> None:
    """Set the limits of TASK_QUEUE to exactly the ones given (none given: no limits). Every
    worker follows at once, without a restart."""
    async def go() -> Any:
        client = await client_for(env, create=True)
        return await client.queue.configure(
            task_queue, namespace=env.namespace, concurrency=concurrency,
            per_key_concurrency=per_key_concurrency, rate_limit=rate_limit)

    d = run(env, go())
    if as_json:
        out(to_json(d, indent=2))
        return
    text = limits_text(d.limits)
    out(f"queue {task_queue}: {'no limits' if text == '-' else text}")


@queue_group.command("describe", short_help="Show a queue's limits and figures.")
@click.argument("task_queue")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@common_options
def describe_command(env: Env, task_queue: str, as_json: bool) -> None:
    """Show the limits of TASK_QUEUE, its depth (due work not running), what runs, what waits
    to be admitted, and how long the oldest due work has waited."""
    async def go() -> Any:
        client = await client_for(env)
        return await client.queue.describe(task_queue, namespace=env.namespace)

    print_record(run(env, go()), as_json, describe_lines)


def describe_lines(d: Any) -> list[str]:
    """The text of ``memflow queue describe``."""
    def field(label: str, value: str) -> str:
        return f"  {click.style(label.ljust(11), dim=True)} {value}"

    return [click.style(d.task_queue, bold=True),
            field("limits", limits_text(d.limits)), field("running", str(d.running)),
            field("pending", str(d.pending)), field("depth", str(d.depth)),
            field("oldest wait", render.seconds(d.oldest_wait_s))]


@queue_group.command("list", short_help="List the queues of the namespace.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array).")
@common_options
def list_command(env: Env, as_json: bool) -> None:
    """List the queues with limits, tasks or live runs, with their figures."""
    async def go() -> Any:
        client = await client_for(env)
        return await client.queue.list(namespace=env.namespace)

    print_listing(run(env, go()), as_json, empty="no queues",
                  headers=["QUEUE", "LIMITS", "RUNNING", "PENDING", "DEPTH", "OLDEST WAIT"],
                  row=lambda d: [d.task_queue, limits_text(d.limits), str(d.running),
                                 str(d.pending), str(d.depth), render.seconds(d.oldest_wait_s)],
                  limits={0: 40, 1: 50})
