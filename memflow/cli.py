"""The ``memflow`` command line."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click


@click.group()
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """MemFlow: durable workflows backed by PostgreSQL."""
    ctx.obj = {"debug": debug}


@main.command()
@click.option("--database-url", envvar="MEMFLOW_DATABASE_URL", default=None,
              help="Postgres DSN (default: MEMFLOW_DATABASE_URL, else the embedded Postgres).")
@click.option("--namespace", default="memflow_demo", show_default=True)
@click.pass_context
def demo(ctx: click.Context, database_url: str | None, namespace: str) -> None:
    """Run the order workflow (payment and email activities on a 'payment' worker)."""
    from memflow.demo import run_demo

    if database_url is None:
        click.echo("no MEMFLOW_DATABASE_URL: using the embedded Postgres under MEMFLOW_HOME")
    _run(ctx, run_demo(database_url, namespace, click.echo))


def _run(ctx: click.Context, coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if ctx.obj and ctx.obj.get("debug"):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
