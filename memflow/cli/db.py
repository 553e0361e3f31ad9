"""``memflow db``: create or upgrade tables, prune finished workflows, and show what is stored."""

from __future__ import annotations

import time
from typing import Any

import click

from memflow.cli import render
from memflow.cli.common import (
    CliError,
    Env,
    common_options,
    connect,
    duration,
    note,
    open_namespace,
    out,
    run,
    to_json,
)
from memflow.cli.progress import progress, stderr_tty

TASK_KINDS = {"w": "workflow pass", "a": "activity", "t": "timer"}


@click.group("db")
def db_group() -> None:
    """Database maintenance: migrate, prune, info."""


@db_group.command("migrate")
@click.option("--all", "all_namespaces", is_flag=True,
              help="Upgrade every namespace that has MemFlow tables.")
@common_options
def migrate_command(env: Env, all_namespaces: bool) -> None:
    """Create the namespace's tables, or upgrade them to the latest version."""
    for name, before, after in run(env, _migrate(env, all_namespaces)):
        change = f"upgraded from version {before}" if before else "created"
        if before == after:
            change = "already up to date"
        out(f"namespace {name}: migration version {after} ({change})")


async def _migrate(env: Env, all_namespaces: bool) -> list[tuple[str, int, int]]:
    from memflow.store import NamespaceStore, Store
    from memflow.store.admin import memflow_namespaces

    store = await Store.get(await connect(env), "cli")
    names = await memflow_namespaces(store) if all_namespaces else [env.namespace]
    done = []
    with progress("migrating", total=len(names)) as meter:
        for name in names:
            meter.advance(0, f"migrating namespace {name}")
            existing = set(await memflow_namespaces(store))
            before = (await NamespaceStore(store, name).admin.migration_version()
                      if name in existing else 0)
            ns = await NamespaceStore.open(store, name)
            done.append((name, before, await ns.admin.migration_version()))
            meter.advance()
    return done


@db_group.command("prune")
@click.option("--older-than", callback=duration, default="7d", show_default=True,
              metavar="DURATION",
              help="Remove workflows that finished longer ago than this (e.g. 7d, 12h, 30m).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Workflows removed per transaction.")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@common_options
def prune_command(env: Env, older_than: float, batch_size: int, dry_run: bool) -> None:
    """Physically remove finished workflows past their retention, with their steps, threads
    and tasks, and the leftover rows of old runs whose id was reused.

    Works in small batches that skip rows in use, so running work is never blocked.
    """
    if dry_run:
        counts = run(env, _count(env, older_than))
        out(f"would remove {counts['workflows']} finished workflows older than "
            f"{render.seconds(older_than)} and the rows of {counts['orphan_runs']} "
            "orphaned runs")
        return
    totals, orphans, took = run(env, _prune(env, older_than, batch_size))
    out(f"removed {totals['workflows']} finished workflows older than "
        f"{render.seconds(older_than)} ({totals['steps']} steps, {totals['threads']} threads, "
        f"{totals['tasks']} tasks) and {orphans['runs']} orphaned runs ({orphans['steps']} "
        f"steps, {orphans['threads']} threads, {orphans['tasks']} tasks) in {took:.2f} s")


async def _count(env: Env, older_than: float) -> dict[str, int]:
    ns = await open_namespace(env)
    counts: dict[str, int] = await ns.admin.count_prunable(older_than)
    return counts


async def _prune(env: Env, older_than: float,
                 batch: int) -> tuple[dict[str, int], dict[str, int], float]:
    ns = await open_namespace(env)
    started = time.perf_counter()
    # On a terminal, a bar per phase whose total is counted first; otherwise a line per batch.
    expected = await ns.admin.count_prunable(older_than) if stderr_tty() else {}
    totals = {"workflows": 0, "steps": 0, "threads": 0, "tasks": 0}
    orphans = {"runs": 0, "steps": 0, "threads": 0, "tasks": 0}
    with progress("pruning finished workflows", expected.get("workflows")) as meter:
        while True:
            got = await ns.admin.prune_batch(older_than, batch)
            if not got.get("workflows"):
                break
            _add(totals, got)
            meter.advance(got["workflows"])
            _report(f"pruned {totals['workflows']} workflows ({totals['steps']} steps) so far…")
        meter = meter.next("removing the rows of orphaned runs", expected.get("orphan_runs"))
        while True:
            got = await ns.admin.prune_orphans_batch(batch)
            removed = got.get("steps", 0) + got.get("threads", 0) + got.get("tasks", 0)
            if not got.get("runs") or not removed:
                break
            _add(orphans, got)
            meter.advance(got["runs"])
            _report(f"removed the rows of {orphans['runs']} orphaned runs so far…")
    return totals, orphans, time.perf_counter() - started


def _add(totals: dict[str, int], batch: dict[str, int]) -> None:
    for key in totals:
        totals[key] += batch.get(key, 0)


def _report(text: str) -> None:
    """A line per prune batch on stderr when no progress bar is drawn (not a terminal)."""
    if not stderr_tty():
        note(text)


@db_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common_options
def info_command(env: Env, as_json: bool) -> None:
    """Show the namespaces that hold MemFlow tables, their migration version, workflows by
    status and queue depths (all namespaces unless --namespace is given)."""
    ctx = click.get_current_context()
    source = ctx.get_parameter_source("namespace")
    only = None if source in (None, click.core.ParameterSource.DEFAULT) else env.namespace
    info = run(env, _info(env, only))
    if as_json:
        out(to_json(info, indent=2))
        return
    out(f"{click.style('database', bold=True)}  {info['database']}  "
        f"(PostgreSQL {info['server_version']})")
    if not info["namespaces"]:
        out("no namespaces with MemFlow tables" + (f" named {only!r}" if only else ""))
        return
    for ns in info["namespaces"]:
        out("")
        latest = ns["latest_version"]
        behind = "" if ns["version"] >= latest else click.style(
            f"  (behind: latest is {latest}; run memflow db migrate)", fg="yellow")
        out(f"{click.style('namespace', bold=True)} {click.style(ns['namespace'], bold=True)}"
            f"  migration version {ns['version']}{behind}")
        counts = ns["workflows"]
        total = sum(counts.values())
        summary = "  ".join(f"{click.style(s, fg=render.STATUS_COLORS.get(s))} {n}"
                            for s, n in counts.items())
        out(f"  workflows  {total}" + (f"  ({summary})" if summary else ""))
        out(f"  signals    {ns['kept_signals']} kept (sent, not yet consumed)")
        if ns["queues"]:
            rows = [[q["queue"], TASK_KINDS.get(q["kind"], q["kind"]), str(q["tasks"]),
                     str(q["leased"])] for q in ns["queues"]]
            for line in render.table(["QUEUE", "KIND", "TASKS", "LEASED"], rows, indent="  "):
                out(line)
        else:
            out("  queues     empty")


async def _info(env: Env, only: str | None) -> dict[str, Any]:
    from memflow.connection import _redact
    from memflow.store import NamespaceStore, Store
    from memflow.store.admin import memflow_namespaces, ping
    from memflow.store.schema import LATEST

    dsn = await connect(env)
    version = await ping(dsn)
    store = await Store.get(dsn, "cli")
    names = await memflow_namespaces(store)
    if only is not None:
        if only not in names:
            raise CliError(f"namespace {only!r} has no MemFlow tables")
        names = [only]
    namespaces = []
    for name in names:
        ns = NamespaceStore(store, name)
        namespaces.append({
            "namespace": name, "version": await ns.admin.migration_version(),
            "latest_version": LATEST, "workflows": await ns.admin.status_counts(),
            "kept_signals": await ns.admin.kept_signals(),
            "queues": await ns.tasks.queue_depths()})
    return {"database": _redact(dsn), "server_version": version, "namespaces": namespaces}
