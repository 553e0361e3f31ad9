"""``memflow history ID`` (a run's history as JSON) and ``memflow replay FILE...`` (replay saved
histories against workflow code, offline: the check to run in CI before a deploy)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from memflow.cli.common import Env, client_for, common_options, fail, note, out, run, to_json
from memflow.cli.workers import _workflow_functions, load_target


@click.command("history", short_help="Print a run's recorded history as JSON.")
@click.argument("workflow_id")
@click.option("--run-id", default=None, help="A given run of the id [default: the latest].")
@click.option("--indent", type=click.IntRange(0, 8), default=2, show_default=True,
              help="JSON indentation (0: one line).")
@common_options
def history_command(env: Env, workflow_id: str, run_id: str | None, indent: int) -> None:
    """Print the history of WORKFLOW_ID (format memflow-history/1) to stdout, e.g. to save it
    for ``memflow replay``: ``memflow history order-1 > order-1.json``."""
    async def go() -> dict[str, Any]:
        client = await client_for(env)
        handle = client.workflow.get_handle(workflow_id=workflow_id, namespace=env.namespace,
                                            run_id=run_id)
        return await handle.fetch_history()
    out(to_json(run(env, go()), indent=indent or None))


@click.command("replay", short_help="Replay saved histories against workflow code (offline).")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False),
                metavar="FILE...")
@click.option("--workflow", "-w", "workflow_paths", multiple=True, required=True,
              metavar="MODULE:ATTR",
              help="The workflow code: a function, list or dict of them (repeatable).")
def replay_command(files: tuple[str, ...], workflow_paths: tuple[str, ...]) -> None:
    """Replay each FILE (a ``memflow history`` document) with the given workflow code, with
    no database. Prints one line per history; exits with code 1 and the divergence on stderr
    when one does not replay."""
    from memflow.testing import Replayer

    named: dict[str, Any] = {}
    for path in workflow_paths:
        target = load_target(path, "--workflow")
        for fn in _workflow_functions([target], (path,)):
            named[fn.__name__] = fn
        if isinstance(target, dict):  # registered under its keys, as Worker.create does
            named.update(target)
    replayer = Replayer(named)
    docs = []
    for name in files:
        try:
            docs.append((name, json.loads(Path(name).read_text())))
        except (OSError, ValueError) as exc:
            fail(f"{name}: cannot read a history: {exc}")
    failed = 0
    for name, doc in docs:
        try:
            result = asyncio.run(replayer.replay(doc))
        except (ValueError, TypeError) as exc:
            failed += 1
            click.echo(f"{name}: {exc}", err=True)
            continue
        except Exception as exc:  # NonDeterminismError, or the code failing in another way
            failed += 1
            click.echo(f"{name}: does not replay: {type(exc).__name__}: {exc}", err=True)
            continue
        skipped = f" (hook threads not given: {', '.join(result.skipped)})" if result.skipped \
            else ""
        out(f"{name}: ok, {result.workflow_name} {result.workflow_id} replays{skipped}")
    if failed:
        note(f"{failed} of {len(docs)} histories do not replay")
        raise SystemExit(1)
