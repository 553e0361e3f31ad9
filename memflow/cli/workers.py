"""``memflow worker`` (serve workflows and activities from import paths) and ``memflow demo``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import os
import signal
import sys
import types
from pathlib import Path
from typing import Any

import click

from memflow.cli.common import Env, common_options, connect, note, run, validate_namespace_option

LOG_LEVELS = ("debug", "info", "warning", "error")


def _import_module(spec: str, param: str) -> types.ModuleType:
    """A module from a dotted name (searched from the current directory too) or a .py path."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec)
            if not path.is_file():
                raise click.BadParameter(f"no such file: {spec}", param_hint=param)
            name = path.stem
            loader = importlib.util.spec_from_file_location(name, path)
            if loader is None or loader.loader is None:
                raise click.BadParameter(f"cannot load {spec}", param_hint=param)
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            loader.loader.exec_module(module)
            return module
        return importlib.import_module(spec)
    except click.BadParameter:
        raise
    except ModuleNotFoundError as exc:
        raise click.BadParameter(f"cannot import {spec!r}: {exc}", param_hint=param) from None
    except Exception as exc:
        raise click.BadParameter(f"importing {spec!r} failed: {type(exc).__name__}: {exc}",
                                 param_hint=param) from None


def load_target(path: str, param: str, *, attr_required: bool = True) -> Any:
    """The object named by ``MODULE:ATTR`` (``ATTR`` may be dotted), or the module itself."""
    module_name, sep, attr = path.partition(":")
    if not module_name or (attr_required and not attr) or (sep and not attr):
        raise click.BadParameter(f"expected MODULE:ATTR (e.g. myapp.flows:order_workflow), "
                                 f"got {path!r}", param_hint=param)
    target: Any = _import_module(module_name, param)
    for part in attr.split(".") if attr else []:
        try:
            target = getattr(target, part)
        except AttributeError:
            raise click.BadParameter(f"{module_name!r} has no attribute {attr!r}",
                                     param_hint=param) from None
    return target


def _workflow_functions(targets: list[Any], paths: tuple[str, ...]) -> list[Any]:
    functions: list[Any] = []
    for target, path in zip(targets, paths, strict=True):
        items = (list(target.values()) if isinstance(target, dict)
                 else list(target) if isinstance(target, list | tuple) else [target])
        for fn in items:
            if not inspect.iscoroutinefunction(fn):
                raise click.BadParameter(f"{path}: {fn!r} is not an `async def` workflow "
                                         "function", param_hint="WORKFLOW")
            functions.append(fn)
    return functions


@click.command("worker", short_help="Run workflow and activity workers until SIGINT/SIGTERM.")
@click.argument("workflows", nargs=-1, metavar="[MODULE:ATTR]...")
@click.option("--task-queue", "-q", help="The queue whose workflows (and own activities, on "
                                         "'<queue>-activity') this worker serves.")
@click.option("--activities", "-a", "activity_paths", multiple=True,
              metavar="MODULE[:ATTR]",
              help="Activities to serve: a dict, list, class, object or module (repeatable).")
@click.option("--activity-queue",
              help="Serve the activities on '<queue>-activity' [default: the --task-queue's].")
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="Tasks run at once by each worker.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--log-format", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="Log lines as text, or as JSON objects (one per line, "
                                      "with workflow_id, run_id, activity_name ... fields).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics on http://0.0.0.0:PORT/metrics "
                   "(needs memflow[metrics]).")
@common_options
def worker_command(env: Env, workflows: tuple[str, ...], task_queue: str | None,
                   activity_paths: tuple[str, ...], activity_queue: str | None,
                   concurrency: int, log_level: str, log_format: str,
                   metrics_port: int | None) -> None:
    """Run workflow and activity workers until SIGINT or SIGTERM, then drain.

    Each MODULE:ATTR names an `async def` workflow function, or a list or dict of them
    (modules are imported from the current directory too, or give a path to a .py file).
    """
    if not workflows and not activity_paths:
        raise click.UsageError("nothing to serve: give workflow functions (MODULE:ATTR) "
                               "and/or --activities")
    if workflows and not task_queue:
        raise click.UsageError("--task-queue is required to serve workflows")
    if activity_paths and not (activity_queue or task_queue):
        raise click.UsageError("--activities needs --activity-queue or --task-queue")
    functions = _workflow_functions([load_target(p, "WORKFLOW") for p in workflows], workflows)
    activities: dict[str, Any] = {}
    from memflow.registry import normalize_activities

    for path in activity_paths:
        try:
            activities.update(normalize_activities(
                load_target(path, "--activities", attr_required=False)))
        except TypeError as exc:
            raise click.BadParameter(f"{path}: {exc}", param_hint="--activities") from None
    if metrics_port is not None:
        from memflow.observe import metrics

        if not metrics.INSTALLED:
            raise click.UsageError("--metrics-port needs prometheus_client: "
                                   "pip install 'memflow[metrics]'")
    from memflow.observe.logs import configure

    configure("DEBUG" if env.debug else log_level, log_format)
    run(env, _serve(env, functions, task_queue, activities, activity_queue,
                    {"concurrency": concurrency, "metrics_port": metrics_port}))


async def _serve(env: Env, functions: list[Any], task_queue: str | None,
                 activities: dict[str, Any], activity_queue: str | None,
                 options: dict[str, Any]) -> None:
    from memflow import MemFlow, Worker, register_activity_worker

    dsn = await connect(env)
    if options["metrics_port"] is not None:
        note(f"serving metrics on http://0.0.0.0:{options['metrics_port']}/metrics")
    served: list[str] = []
    own_activities = activities if activities and not activity_queue else None
    if functions or own_activities:
        assert task_queue is not None
        await Worker.create(connection=dsn, task_queue=task_queue, workflow=functions,
                            namespace=env.namespace, options=options,
                            activities=own_activities)
        names = ", ".join(f.__name__ for f in functions) or "none"
        served.append(f"queue {task_queue!r} (workflows: {names})")
        if own_activities:
            served.append(f"{task_queue}-activity ({', '.join(sorted(own_activities))})")
    if activities and activity_queue:
        await register_activity_worker({"connection": dsn, "task_queue": activity_queue,
                                        "namespace": env.namespace, "options": options},
                                       activities, activity_queue)
        served.append(f"{activity_queue}-activity ({', '.join(sorted(activities))})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    note(f"memflow worker ready in namespace {env.namespace!r}: " + "; ".join(served)
         + " — Ctrl-C or SIGTERM to stop")
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    note("stopping: finishing the work in flight (Ctrl-C again to force)…")
    await MemFlow.shutdown()
    note("worker stopped")


@click.command("demo", short_help="Run the seed's order workflow end to end.")
@click.option("--database-url", envvar="MEMFLOW_DATABASE_URL", default=None, metavar="DSN",
              help="Postgres DSN [default: $MEMFLOW_DATABASE_URL, else the embedded Postgres].")
@click.option("--namespace", default="memflow_demo", show_default=True,
              callback=validate_namespace_option)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def demo_command(database_url: str | None, namespace: str, debug: bool) -> None:
    """Run the order workflow (payment and email activities on a 'payment' worker)."""
    from memflow.demo import run_demo

    env = Env(database_url or None, namespace, debug)

    async def go() -> str:
        dsn = await connect(env)
        return await run_demo(dsn, namespace, click.echo)

    run(env, go())
