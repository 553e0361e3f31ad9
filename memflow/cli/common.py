"""What every ``memflow`` command shares: connection options, running, errors, progress, JSON."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import click

from memflow.cli import render
from memflow.errors import MemFlowError

T = TypeVar("T")
DEFAULT_NAMESPACE = "memflow"


class CliError(Exception):
    """A failure to report as one line (exit code 1), with no traceback."""


@dataclass
class Env:
    """The connection options of a command."""

    database_url: str | None
    namespace: str
    debug: bool


def validate_namespace_option(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from memflow.store import validate_namespace

    try:
        return validate_namespace(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def common_options(fn: Callable[..., T]) -> Callable[..., T]:
    """Add ``--database-url``, ``--namespace`` and ``--debug``; the command gets ``env``."""
    @click.option("--database-url", envvar="MEMFLOW_DATABASE_URL", default=None,
                  metavar="DSN",
                  help="Postgres DSN [default: $MEMFLOW_DATABASE_URL, else the embedded "
                       "Postgres under $MEMFLOW_HOME].")
    @click.option("--namespace", "-n", envvar="MEMFLOW_NAMESPACE", default=DEFAULT_NAMESPACE,
                  show_default=True, callback=validate_namespace_option,
                  help="Namespace (Postgres schema) [env: MEMFLOW_NAMESPACE].")
    @click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
    @functools.wraps(fn)
    def wrapper(*args: Any, database_url: str | None, namespace: str, debug: bool,
                **kwargs: Any) -> T:
        root = click.get_current_context().find_root()
        root_debug = bool(root.obj and root.obj.get("debug"))
        env = Env(database_url or None, namespace, debug or root_debug)
        return fn(env, *args, **kwargs)
    return wrapper


def run(env: Env, coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; errors become one line on stderr and exit code 1."""
    if env.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def guarded() -> T:
        try:
            return await coro
        finally:
            with contextlib.suppress(Exception):
                from memflow import MemFlow

                await MemFlow.shutdown()

    try:
        return asyncio.run(guarded())
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if env.debug:
            raise
        fail(describe_error(exc))
    raise AssertionError("unreachable")  # pragma: no cover


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` (one line) on stderr and exit."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def one_line(text: str) -> str:
    """``text`` with its lines joined, so that an error is always one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe_error(exc: BaseException) -> str:
    """A short, readable description of an exception for the user."""
    from memflow.store.admin import database_error_text

    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, MemFlowError):
        return exc.message or type(exc).__name__
    database = database_error_text(exc)
    if database is not None:
        return database
    if isinstance(exc, ValueError | TypeError | TimeoutError | LookupError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def connect(env: Env) -> str:
    """The DSN of ``env``, checked to answer (the embedded Postgres is started if needed)."""
    from memflow.connection import _redact, resolve_dsn
    from memflow.store.admin import ping

    if env.database_url is None:
        from memflow.embedded import memflow_home

        note(f"using the embedded Postgres under {memflow_home()} "
             "(set MEMFLOW_DATABASE_URL or --database-url to use another)")
    dsn = await resolve_dsn(env.database_url)
    try:
        await ping(dsn)
    except Exception as exc:
        raise CliError(f"cannot connect to {_redact(dsn)}: {exc}") from exc
    return dsn


async def open_namespace(env: Env, *, create: bool = False) -> Any:
    """The NamespaceStore of ``env``; unless ``create``, the namespace must already exist."""
    from memflow.store import NamespaceStore, Store
    from memflow.store.admin import namespace_exists

    dsn = await connect(env)
    store = await Store.get(dsn, "cli")
    if create:
        return await NamespaceStore.open(store, env.namespace)
    if not await namespace_exists(store, env.namespace):
        raise CliError(f"namespace {env.namespace!r} has no MemFlow tables "
                       "(nothing ran there yet; `memflow db info` lists the namespaces)")
    return NamespaceStore(store, env.namespace)


async def client_for(env: Env, *, create: bool = False) -> Any:
    """A Client on ``env`` (the namespace checked to exist unless ``create``)."""
    from memflow import Client

    dsn = await connect(env) if create else (await open_namespace(env)).store.dsn
    return Client(connection=dsn, namespace=env.namespace)


# ---- JSON -------------------------------------------------------------------------------

def parse_json(text: str) -> Any:
    """``text`` as JSON, or a usage error (exit code 2)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (strings need JSON quotes, e.g. '\"text\"')" if text[:1] not in "\"[{" else ""
        raise click.BadParameter(f"{text!r} is not valid JSON ({exc.msg} at column "
                                 f"{exc.colno}){hint}") from None


def json_args(_ctx: click.Context, _param: click.Parameter,
              values: tuple[str, ...]) -> list[Any]:
    """Callback of a repeatable ``--arg JSON`` option."""
    return [parse_json(v) for v in values]


def json_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[Any] | None:
    """Callback of ``--args JSON_LIST``."""
    if value is None:
        return None
    parsed = parse_json(value)
    if not isinstance(parsed, list):
        raise click.BadParameter("--args must be a JSON list, e.g. '[\"a\", 1]'")
    return parsed


def json_value(_ctx: click.Context, _param: click.Parameter, value: str) -> Any:
    """Callback of a JSON argument."""
    return parse_json(value)


def duration(_ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Callback of a duration option (``30s``, ``7d``, ``2 minutes``, a number of seconds)."""
    if value is None:
        return None
    from memflow.durations import parse_duration

    try:
        return parse_duration(value, f"--{(param.name or '').replace('_', '-')}")
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None


def to_json(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON text (datetimes in ISO 8601, anything else unknown as a string)."""
    return json.dumps(value, ensure_ascii=False, indent=indent, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    return str(value)


# ---- output -----------------------------------------------------------------------------

def color_enabled() -> bool | None:
    """False when NO_COLOR is set; otherwise click decides (colour only on a terminal)."""
    return False if os.environ.get("NO_COLOR") else None


def out(text: str = "") -> None:
    """Print to stdout (styles are dropped when stdout is not a terminal)."""
    click.echo(text, color=color_enabled())


def note(text: str) -> None:
    """A progress or status line on stderr."""
    click.echo(text, err=True, color=color_enabled())


def print_record(record: Any, as_json: bool, lines: Callable[[Any], list[str]]) -> None:
    """A ``describe``-like command's output: ``record`` (a dataclass) as JSON, or its
    ``lines(record)``."""
    if as_json:
        out(to_json(record, indent=2))
        return
    for line in lines(record):
        out(line)


def print_listing(records: Sequence[Any], as_json: bool, *, empty: str, headers: list[str],
                  row: Callable[[Any], list[Any]], limits: dict[int, int]) -> None:
    """A ``list`` command's output: ``records`` (dataclasses) as one JSON array, or a table of
    ``row(record)`` under ``headers`` (its first column shortened in the middle; ``limits``
    caps column widths); ``empty`` on stderr when there are none."""
    if as_json:
        out(to_json(list(records), indent=2))
        return
    if not records:
        note(empty)
        return
    for line in render.table(headers, [row(r) for r in records], limits=limits, middle=(0,)):
        out(line)
