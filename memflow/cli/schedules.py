"""``memflow schedule create|list|describe|pause|unpause|trigger|backfill|delete``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from memflow.cli import render
from memflow.cli.common import (
    Env,
    client_for,
    common_options,
    note,
    out,
    print_listing,
    print_record,
    run,
)
from memflow.cli.workflows import _arguments, arg_options
from memflow.schedules.spec import OVERLAP_POLICIES


@click.group("schedule", short_help="Create, inspect and steer schedules.")
def schedule_group() -> None:
    """Schedules start a workflow on cron expressions or fixed intervals; every worker of the
    namespace runs them (no extra process)."""


def _when(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time "
                                 "(e.g. 2026-01-31T03:00:00+00:00)") from None


def _spec(d: Any) -> str:
    parts = list(d.cron)
    if d.every is not None:
        parts.append(f"every {render.seconds(d.every)}")
    text = " | ".join(parts)
    return text if d.timezone == "UTC" else f"{text} ({d.timezone})"


@schedule_group.command("create", short_help="Create a schedule.")
@click.argument("schedule_id")
@click.option("--workflow", "workflow_name", required=True, metavar="NAME",
              help="The workflow function each tick starts.")
@click.option("--task-queue", "-q", required=True, help="The queue its workers serve.")
@arg_options
@click.option("--cron", multiple=True, help="A cron expression (repeatable).")
@click.option("--every", help="An interval instead of (or besides) cron, e.g. '15 minutes'.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of cron.")
@click.option("--overlap", type=click.Choice(OVERLAP_POLICIES), default="skip",
              show_default=True, help="What a tick does while the previous run is open.")
@click.option("--catchup-window", default="1 minute", show_default=True,
              help="Ticks missed for longer than this are skipped.")
@click.option("--jitter", help="Delay each start by up to this much.")
@click.option("--start-at", callback=_when, metavar="TIME", help="No tick before (ISO 8601).")
@click.option("--end-at", callback=_when, metavar="TIME", help="No tick after (ISO 8601).")
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--note", help="A note shown by describe.")
@common_options
def create_command(env: Env, schedule_id: str, workflow_name: str, task_queue: str,
                   arg: list[Any], args_list: list[Any] | None, cron: tuple[str, ...],
                   every: str | None, timezone: str, overlap: str, catchup_window: str,
                   jitter: str | None, start_at: datetime | None, end_at: datetime | None,
                   paused: bool, note: str | None) -> None:
    """Create schedule SCHEDULE_ID."""
    args = _arguments(arg, args_list)

    async def go() -> Any:
        client = await client_for(env, create=True)
        sched = await client.schedule.create(
            schedule_id, workflow_name=workflow_name, task_queue=task_queue, args=args,
            cron=list(cron) or None, every=every, timezone=timezone, overlap=overlap,
            catchup_window=catchup_window, jitter=jitter, start_at=start_at, end_at=end_at,
            paused=paused, note=note, namespace=env.namespace)
        return await sched.describe()

    desc = run(env, go())
    first = desc.next_runs[0].isoformat() if desc.next_runs else "never"
    out(f"created schedule {schedule_id} (next run {first})")


@schedule_group.command("list", short_help="List the schedules of the namespace.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array).")
@common_options
def list_command(env: Env, as_json: bool) -> None:
    """List schedules with their spec, state and next run."""
    async def go() -> Any:
        client = await client_for(env)
        return await client.schedule.list(namespace=env.namespace)

    print_listing(run(env, go()), as_json, empty="no schedules",
                  headers=["SCHEDULE ID", "WORKFLOW", "QUEUE", "SPEC", "OVERLAP", "STATE",
                           "NEXT RUN", "RUNNING"], row=_list_row, limits={0: 40, 3: 40})


def _list_row(d: Any) -> list[Any]:
    state = (render.Cell("paused", fg="yellow") if d.paused
             else render.Cell("active", fg="green"))
    return [d.schedule_id, d.workflow_name, d.task_queue, _spec(d), d.overlap, state,
            render.when(d.next_runs[0]) if d.next_runs else "-", str(len(d.running))]


@schedule_group.command("describe", short_help="Show one schedule: next and recent runs.")
@click.argument("schedule_id")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@common_options
def describe_command(env: Env, schedule_id: str, as_json: bool) -> None:
    """Show a schedule's spec, state, counters, next five and recent runs."""
    async def go() -> Any:
        client = await client_for(env)
        return await client.schedule.get_handle(schedule_id, namespace=env.namespace).describe()

    print_record(run(env, go()), as_json, describe_lines)


def describe_lines(d: Any) -> list[str]:
    """The text of ``memflow schedule describe``."""
    def field(label: str, value: str) -> str:
        return f"  {click.style(label.ljust(11), dim=True)} {value}"

    state = click.style("paused", fg="yellow", bold=True) if d.paused else click.style(
        "active", fg="green", bold=True)
    lines = [click.style(d.schedule_id, bold=True) + "  " + state,
             field("workflow", f"{d.workflow_name} on {d.task_queue}"),
             field("arguments", render.compact(d.args)),
             field("spec", _spec(d)), field("overlap", d.overlap),
             field("catch-up", render.seconds(d.catchup_window))]
    if d.jitter:
        lines.append(field("jitter", render.seconds(d.jitter)))
    if d.note:
        lines.append(field("note", d.note))
    lines.append(field("counts", f"{d.skipped} skipped, {d.missed} missed"))
    if d.running:
        lines.append(field("running", ", ".join(d.running)))
    if d.buffered:
        lines.append(field("buffered", ", ".join(t.isoformat() for t in d.buffered)))
    lines.append(field("next runs", ", ".join(t.isoformat() for t in d.next_runs) or "none"))
    lines.append("")
    if not d.recent_runs:
        lines.append(click.style("recent runs", bold=True) + "  (none yet)")
        return lines
    lines.append(click.style("recent runs", bold=True))
    lines.extend(render.table(
        ["SCHEDULED", "STARTED", "WORKFLOW ID", "STATUS"],
        [[render.when(r["scheduled_at"]), render.when(r["started_at"]), r["workflow_id"],
          render.status(r["status"])] for r in d.recent_runs], indent="  ",
        limits={2: 60}, middle=(2,)))
    return lines


def _steer(name: str, doc: str, action: str) -> Any:
    @schedule_group.command(name, short_help=doc)
    @click.argument("schedule_id")
    @click.option("--note", help="Replaces the schedule's note.")
    @common_options
    def command(env: Env, schedule_id: str, note: str | None) -> None:
        async def go() -> None:
            client = await client_for(env)
            handle = client.schedule.get_handle(schedule_id, namespace=env.namespace)
            await getattr(handle, name)(note=note)

        run(env, go())
        out(f"{action} schedule {schedule_id}")
    command.__doc__ = doc
    return command


pause_command = _steer("pause", "Pause a schedule (open runs go on).", "paused")
unpause_command = _steer("unpause", "Unpause a schedule (from its next tick on).", "unpaused")


@schedule_group.command("trigger", short_help="Start one run now.")
@click.argument("schedule_id")
@click.option("--overlap", type=click.Choice(OVERLAP_POLICIES),
              help="Overlap policy for this run [default: the schedule's].")
@common_options
def trigger_command(env: Env, schedule_id: str, overlap: str | None) -> None:
    """Start one run of the schedule now; prints its workflow id."""
    async def go() -> str | None:
        client = await client_for(env)
        handle = client.schedule.get_handle(schedule_id, namespace=env.namespace)
        wf_id: str | None = await handle.trigger(overlap=overlap)
        return wf_id

    wf_id = run(env, go())
    out(wf_id if wf_id else f"not started now (overlap policy of {schedule_id})")


@schedule_group.command("backfill", short_help="Run the ticks of a past range.")
@click.argument("schedule_id")
@click.argument("start", callback=_when)
@click.argument("end", callback=_when)
@click.option("--overlap", type=click.Choice(OVERLAP_POLICIES),
              help="Overlap policy for these runs [default: the schedule's].")
@common_options
def backfill_command(env: Env, schedule_id: str, start: datetime, end: datetime,
                     overlap: str | None) -> None:
    """One run per tick of the schedule in [START, END) (ISO 8601 times; UTC if no
    offset); prints the workflow ids started now."""
    async def go() -> list[str]:
        client = await client_for(env)
        handle = client.schedule.get_handle(schedule_id, namespace=env.namespace)
        started: list[str] = await handle.backfill(start, end, overlap=overlap)
        return started

    started = run(env, go())
    for wf_id in started:
        out(wf_id)
    note(f"started {len(started)} run(s)")


@schedule_group.command("delete", short_help="Delete a schedule (its runs go on).")
@click.argument("schedule_id")
@common_options
def delete_command(env: Env, schedule_id: str) -> None:
    """Delete a schedule."""
    async def go() -> None:
        client = await client_for(env)
        await client.schedule.get_handle(schedule_id, namespace=env.namespace).delete()

    run(env, go())
    out(f"deleted schedule {schedule_id}")
