"""The ``memflow`` command line.

Every command takes ``--database-url`` (default ``$MEMFLOW_DATABASE_URL``, else the embedded
Postgres), ``--namespace`` (default ``memflow``) and ``--debug``. Errors are one line on stderr
with exit code 1; bad arguments exit with code 2.

- ``workers``: ``memflow worker`` and ``memflow demo``
- ``workflows``: ``start``, ``result``, ``signal``, ``interrupt``, ``cancel``, ``terminate``,
  ``hook``, ``unpark``
- ``messages``: ``query``, ``update``
- ``browse``: ``list``, ``show``
- ``db``: ``db migrate``, ``db prune``, ``db info``
- ``dashboard``: ``memflow dashboard`` (the web UI)
- ``schedules``: ``schedule create|list|describe|pause|unpause|trigger|backfill|delete``
- ``history``: ``history ID`` (a run's history as JSON), ``replay FILE... --workflow M:F``
- ``queues``: ``queue configure|describe|list`` (flow control)
"""

from __future__ import annotations

import sys
from typing import Any

import click

from memflow.cli.browse import list_command, show_command
from memflow.cli.common import one_line
from memflow.cli.dashboard import dashboard_command
from memflow.cli.db import db_group
from memflow.cli.history import history_command, replay_command
from memflow.cli.messages import query_command, update_command
from memflow.cli.queues import queue_group
from memflow.cli.schedules import schedule_group
from memflow.cli.workers import demo_command, worker_command
from memflow.cli.workflows import (
    cancel_command,
    hook_command,
    interrupt_command,
    result_command,
    signal_command,
    start_command,
    terminate_command,
    unpark_command,
)


class MemFlowGroup(click.Group):
    """The command group, reporting bad arguments as one line (exit code 2)."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name or "memflow", complete_var,
                                standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "memflow"
            click.echo(f"error: {one_line(exc.format_message())} (see '{where} --help')",
                       err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=MemFlowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors (any command).")
@click.version_option(package_name="memflow", prog_name="memflow")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """MemFlow: durable workflows backed by PostgreSQL."""
    ctx.obj = {"debug": debug}


for _command in (worker_command, start_command, result_command, signal_command,
                 interrupt_command, cancel_command, terminate_command, hook_command,
                 list_command, show_command, db_group, schedule_group, queue_group,
                 demo_command, dashboard_command, unpark_command, history_command,
                 replay_command, query_command, update_command):
    main.add_command(_command)

__all__ = ["main"]
