"""``memflow list`` and ``memflow show``: what is in a namespace, and one workflow in detail."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from memflow.cli import render
from memflow.cli.common import Env, client_for, common_options, note, open_namespace, out, run
from memflow.cli.common import to_json as dumps
from memflow.cli.render import Cell

STATUSES = ("pending", "running", "completed", "failed", "interrupted", "cancelled",
            "timed_out", "continued")


@click.command("list", short_help="List workflows (filter by status, queue, name).")
@click.option("--status", "-s", type=click.Choice(STATUSES), help="Only runs in this status.")
@click.option("--queue", "-q", help="Only runs of this task queue.")
@click.option("--name", help="Only runs of this workflow function.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="At most this many runs, newest first.")
@click.option("--all-runs", "-a", is_flag=True,
              help="Earlier runs of each id too (continued as new, replaced, terminated by a "
                   "new start); implied by --status continued.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array of runs).")
@common_options
def list_command(env: Env, status: str | None, queue: str | None, name: str | None, limit: int,
                 all_runs: bool, as_json: bool) -> None:
    """List workflow runs, newest first: the current run of each id (every run with -a)."""
    all_runs = all_runs or status == "continued"  # a continued run is never an id's current
    rows = run(env, _list(env, status, queue, name, limit, all_runs))
    if as_json:
        out(dumps(rows, indent=2))
        return
    if not rows:
        note("no workflows match")
        return
    head = ["WORKFLOW ID", "RUN ID"] if all_runs else ["WORKFLOW ID"]
    lines = render.table(
        [*head, "NAME", "QUEUE", "STATUS", "CREATED", "DURATION"],
        [[r["workflow_id"], *([r["run_id"]] if all_runs else []), r["name"], r["task_queue"],
          render.status(r["status"]), render.when(r["created_at"]),
          render.elapsed(r["created_at"], r["completed_at"])] for r in rows],
        limits={0: 48, 1: 36, 2: 30, 3: 24} if all_runs else {0: 48, 1: 30, 2: 24},
        middle=(0, 1) if all_runs else (0,))
    for line in lines:
        out(line)
    if len(rows) == limit:
        note(f"showing the newest {limit}; use --limit for more")


async def _list(env: Env, status: str | None, queue: str | None, name: str | None,
                limit: int, all_runs: bool) -> list[dict[str, Any]]:
    ns = await open_namespace(env)
    rows: list[dict[str, Any]] = await ns.workflows.list_workflows(
        status=status, queue=queue, name=name, limit=limit, all_runs=all_runs)
    return rows


@click.command("show", short_help="Show one workflow and the timeline of its steps.")
@click.argument("workflow_id")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run as JSON (the handle's export, plus its description).")
@common_options
def show_command(env: Env, workflow_id: str, as_json: bool) -> None:
    """Show one workflow: status, arguments, result or error, entity, search fields, children
    and the timeline of its steps."""
    described, exported = run(env, _show(env, workflow_id))
    if as_json:
        out(dumps({**exported, "describe": dataclasses.asdict(described)}, indent=2))
        return
    for line in show_lines(described, exported):
        out(line)


async def _show(env: Env, workflow_id: str) -> tuple[Any, dict[str, Any]]:
    client = await client_for(env)
    handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace)
    described = await handle.describe()
    exported = await handle.export()
    return described, exported


def show_lines(d: Any, exported: dict[str, Any]) -> list[str]:
    """The text of ``memflow show``."""
    data = exported.get("run", {})
    state = exported.get("state", {})
    tty = render.stdout_tty()
    wide = render.width() - 14 if tty else None

    def field(label: str, value: str, **style: Any) -> str:
        text = render.shorten(value, wide)
        return f"  {click.style(label.ljust(11), dim=True)} " + (
            click.style(text, **style) if style else text)

    lines = [click.style(d.workflow_id, bold=True) + "  "
             + click.style(d.status, fg=render.STATUS_COLORS.get(d.status), bold=True)]
    lines.append(field("name", d.workflow_name))
    lines.append(field("task queue", d.task_queue))
    lines.append(field("run", d.run_id))
    lines.append(field("created", render.when(d.created_at)))
    if d.completed_at is not None:
        lines.append(field("finished", f"{render.when(d.completed_at)} "
                                       f"(took {render.elapsed(d.created_at, d.completed_at)})"))
    if d.attempt and d.attempt > 1:
        lines.append(field("attempt", str(d.attempt)))
    if d.parent_workflow_id:
        lines.append(field("parent", d.parent_workflow_id))
    lines.append(field("arguments", render.compact(data.get("args"))))
    if d.status == "completed":
        lines.append(field("result", render.compact(state.get("response")), fg="green"))
    elif d.error:
        lines.append(field("error", render.error_line(d.error), fg="red"))
    for task in getattr(d, "parked", None) or []:
        kind = {"w": "pass", "a": "activity", "t": "timer"}.get(task["kind"], task["kind"])
        where = f"thread {task['dim'] or 'main'}" + (
            f" step {task['idx']}" if task["idx"] is not None else "")
        lines.append(field("parked", f"{kind} task on {task['queue']} ({where}) after "
                                     f"{task['failures']} failures", fg="red"))
    if d.entity_type or data.get("entity"):
        entity = render.compact(data.get("entity"))
        lines.append(field("entity", f"{entity}  (type {d.entity_type})" if d.entity_type
                           else entity))
    search = exported.get("data") or {}
    if search:
        lines.append(field("search", ", ".join(f"{k}={v}" for k, v in sorted(search.items()))))
    for child in d.children:
        lines.append(field("child", f"{child['workflow_id']}  {child['name']}  "
                                    f"{child['status']}"))
    timeline = exported.get("timeline") or []
    lines.append("")
    if not timeline:
        lines.append(click.style("timeline", bold=True) + "  (no steps recorded)")
        return lines
    lines.append(click.style(f"timeline ({len(timeline)} steps)", bold=True))
    rows = []
    for s in timeline:
        failed = s.get("status") == "failed"
        result = render.error_line(s.get("error")) if failed else (
            "" if s.get("status") == "pending" else render.compact(s.get("result")))
        rows.append([Cell(s["index"]), s.get("dimension") or "main", s["kind"],
                     s.get("name") or "", render.status(s["status"]),
                     render.seconds(None if s.get("duration_ms") is None
                                    else s["duration_ms"] / 1000),
                     Cell(result, fg="red") if failed else Cell(result)])
    result_width = max(20, render.width() - 80) if tty else None
    limits = {3: 28, 6: result_width} if result_width else {3: 28}
    lines.extend(render.table(["#", "THREAD", "KIND", "NAME", "STATUS", "DURATION", "RESULT"],
                              rows, limits=limits, indent="  ", middle=(3,)))
    return lines
