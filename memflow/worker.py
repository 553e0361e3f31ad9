"""Workers: processes that run workflow passes, timers and activities of some task queues."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from memflow import lifecycle, registry
from memflow.client import Client
from memflow.connection import Connection
from memflow.engine.activities import run_activity, time_out, timer_outcome
from memflow.engine.cache import ThreadCache
from memflow.engine.consumer import Consumer
from memflow.engine.queries import QueryServer
from memflow.engine.results import ResultBatcher
from memflow.engine.runner import ON_NONDETERMINISM, PassRunner
from memflow.ids import check_queue
from memflow.observe import WorkerMetrics, metrics
from memflow.schedules import scheduler as schedules
from memflow.schedules.client import cancel_runs
from memflow.store import NamespaceStore, Task
from memflow.workflow.main import make_main

log = logging.getLogger("memflow.worker")

DEFAULT_OPTIONS: dict[str, Any] = {
    "concurrency": 100,      # tasks run at once by one consumer
    "lease_seconds": 30.0,   # how long a claimed task is held before another worker may take it
    "poll_seconds": 10.0,    # safety-net poll when no notification arrives
    "cache_size": 512,       # blocked workflow threads kept in memory (the sticky cache)
    "max_task_failures": 10,        # engine failures of one task before it is parked
    "failure_backoff_seconds": 1.0,  # first delay after such a failure (doubled, at most 30 s)
    # a replay diverging from the history: "retry" fails the pass (the run stays running and
    # the pass is retried with backoff, so a rollback lets it go on); "fail" fails the run
    "on_nondeterminism": "retry",
    "log_level": None,
    "metrics_port": None,    # serve Prometheus metrics on this port (0: any free port)
}


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULT_OPTIONS)
    for key, value in (options or {}).items():
        if key not in DEFAULT_OPTIONS:
            raise ValueError(f"unknown worker option {key!r}; known: {sorted(DEFAULT_OPTIONS)}")
        merged[key] = value
    port = merged["metrics_port"]
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 <= port <= 65535):
        raise ValueError(f"metrics_port must be a port number (0-65535) or None, not {port!r}")
    if port is not None and not metrics.INSTALLED:
        raise ImportError("the metrics_port option needs prometheus_client: "
                          "pip install 'memflow[metrics]'")
    _failure_options(merged)  # bad values fail here, before any connection
    if merged["on_nondeterminism"] not in ON_NONDETERMINISM:
        raise ValueError(f"on_nondeterminism must be one of {ON_NONDETERMINISM}, "
                         f"not {merged['on_nondeterminism']!r}")
    if merged["log_level"]:
        logging.getLogger("memflow").setLevel(str(merged["log_level"]).upper())
    return merged


def _failure_options(options: dict[str, Any]) -> dict[str, Any]:
    bound, backoff = options["max_task_failures"], options["failure_backoff_seconds"]
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        raise ValueError("max_task_failures must be a positive int")
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not (
            0 <= backoff <= 30):
        raise ValueError("failure_backoff_seconds must be a number of seconds in [0, 30]")
    return {"max_failures": bound, "failure_backoff": float(backoff)}


def _functions(workflow: Any) -> dict[str, Callable[..., Any]]:
    if workflow is None:
        return {}
    items = workflow.values() if isinstance(workflow, dict) else (
        workflow if isinstance(workflow, list | tuple) else [workflow])
    out: dict[str, Callable[..., Any]] = {}
    for fn in items:
        if not callable(fn) or not asyncio.iscoroutinefunction(fn):
            raise TypeError(f"workflow {fn!r} must be an `async def` function")
        out[fn.__name__] = fn
    if isinstance(workflow, dict):
        out.update({k: v for k, v in workflow.items()})
    return out


def _consumer(ns: NamespaceStore, queues: list[str], handler: Callable[[Task], Awaitable[None]],
              options: dict[str, Any]) -> Consumer:
    return Consumer(ns, queues, handler, concurrency=int(options["concurrency"]),
                    lease=float(options["lease_seconds"]), poll=float(options["poll_seconds"]),
                    **_failure_options(options))


class _Serving:
    """What both kinds of worker share: a consumer, optional metrics, a stop that drains."""

    ns: NamespaceStore
    consumer: Consumer
    metrics: WorkerMetrics | None = None
    _stopped: asyncio.Event

    async def _start(self, options: dict[str, Any]) -> None:
        self.metrics = _metrics(self.ns, self.consumer.queues, options)
        await self.consumer.start()
        lifecycle.track(self)

    async def stop(self) -> None:
        """Stop claiming work and finish what is in flight."""
        if self._stopped.is_set():
            return
        await self.consumer.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        self._drained()
        self._stopped.set()
        lifecycle.untrack(self)

    def _drained(self) -> None:
        """Called by ``stop`` once the work in flight has finished."""


class Worker(_Serving):
    """Serves one task queue: its workflow passes and timers, and its own activity topic."""

    def __init__(self, ns: NamespaceStore, task_queue: str, functions: dict[str, Any],
                 options: dict[str, Any]):
        self.ns = ns
        self.task_queue = task_queue
        self.functions = functions
        self.options = options
        self.cache = ThreadCache(int(options["cache_size"]))
        self.consumer = _consumer(ns, [task_queue, f"{task_queue}-activity"], self._handle,
                                  options)
        self.runner = PassRunner(ns, functions, self.cache, make_main,
                                 owner=self.consumer.owner, lease=self.consumer.lease,
                                 local_queues=frozenset({f"{task_queue}-activity"}),
                                 spawn=self.consumer.spawn, reserve=self.consumer.reserve,
                                 unreserve=self.consumer.unreserve,
                                 on_nondeterminism=str(options["on_nondeterminism"]),
                                 failure_backoff=float(options["failure_backoff_seconds"]))
        self.runner.leases = self.consumer.leases
        self.queries = QueryServer(ns, [task_queue], self.runner, self.consumer.owner)
        self.scheduler: schedules.Scheduler | None = None  # this namespace's, shared
        self._stopped = asyncio.Event()

    @classmethod
    async def create(cls, connection: Any = None, task_queue: str = "default",
                     workflow: Any = None, namespace: str = "memflow",
                     options: dict[str, Any] | None = None,
                     activities: Any = None) -> Worker:
        """Start a worker for ``task_queue`` running ``workflow`` (a function, dict or list)."""
        check_queue(task_queue)
        functions = _functions(workflow)
        opts = _options(options)
        if activities is not None:
            registry.register_activities(activities, task_queue)
        conn = await Connection.connect(connection)
        store = await conn.store("worker")
        ns = await NamespaceStore.open(store, namespace)
        worker = cls(ns, task_queue, functions, opts)
        await worker._start(opts)
        await worker.queries.start()
        # The scheduler's cancel_other policy cancels runs through a client (it connects on use).
        client = Client(connection=ns.store.dsn, namespace=ns.namespace)
        worker.scheduler = await schedules.acquire(
            ns, float(opts["poll_seconds"]), functools.partial(cancel_runs, client, ns.namespace))
        return worker

    @property
    def metrics_port(self) -> int | None:
        """The port this worker serves ``/metrics`` on (None without ``metrics_port``)."""
        return self.metrics.port if self.metrics is not None else None

    async def _handle(self, task: Task) -> None:
        if task.kind == "w":
            await self.runner.run(task)
            return
        if task.kind == "a":
            outcome = await run_activity(self.ns, task, self.consumer.owner)
        elif task.kind == "t":
            outcome = timer_outcome(task)
        elif task.kind == "x":  # the run's workflow timeout passed
            if await time_out(self.ns, task, self.consumer.owner):
                cached = self.cache.take((task.run_id, ""))
                if cached is not None:
                    cached.close()
            return
        else:  # pragma: no cover - future task kinds
            log.error("unknown task kind %r", task.kind)
            return
        if outcome is not None:
            await self.runner.settle_local(task, *outcome)

    async def run(self) -> None:
        """Block until the worker is stopped (SIGINT/SIGTERM stop it gracefully)."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.stop()))
                installed.append(sig)
        try:
            await self._stopped.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def stop(self) -> None:
        """Stop running schedules and claiming work, and finish what is in flight."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and not self._stopped.is_set():
            await schedules.release(scheduler)
        if not self._stopped.is_set():
            await self.queries.stop()
        await super().stop()

    def _drained(self) -> None:
        self.cache.clear()


class ActivityWorker(_Serving):
    """Serves the activity topic ``<task_queue>-activity`` of registered activities."""

    def __init__(self, ns: NamespaceStore, queue: str, options: dict[str, Any]):
        self.ns = ns
        self.queue = queue
        self.consumer = _consumer(ns, [f"{queue}-activity"], self._handle, options)
        self.results = ResultBatcher(ns, self.consumer.owner, self.consumer.lease)
        self._stopped = asyncio.Event()

    async def _handle(self, task: Task) -> None:
        outcome = await run_activity(self.ns, task, self.consumer.owner)
        if outcome is not None:
            await self.results.record(task, *outcome, hold=False)

    async def run(self) -> None:
        """Block until stopped."""
        await self._stopped.wait()


def _metrics(ns: NamespaceStore, queues: list[str],
             options: dict[str, Any]) -> WorkerMetrics | None:
    port = options["metrics_port"]
    return None if port is None else WorkerMetrics(ns, list(queues), int(port))


_ACTIVITY_CONFIG_KEYS = frozenset({"connection", "task_queue", "namespace", "options"})


async def register_activity_worker(config: dict[str, Any], activities: Any,
                                   activity_task_queue: str | None = None) -> ActivityWorker:
    """Register ``activities`` and serve them on ``<queue>-activity`` (queue from the args or
    ``config["task_queue"]``). Config keys: ``connection``, ``task_queue``, ``namespace``,
    ``options``."""
    if not isinstance(config, dict):
        raise TypeError("register_activity_worker: config must be a dict")
    unknown = sorted(str(k) for k in config if k not in _ACTIVITY_CONFIG_KEYS)
    if unknown:
        raise TypeError(f"register_activity_worker: unknown config key(s) {unknown}; "
                        f"known: {sorted(_ACTIVITY_CONFIG_KEYS)}")
    queue = activity_task_queue or config.get("task_queue")
    if queue is None:
        raise ValueError("register_activity_worker: a task_queue is required")
    check_queue(queue, "register_activity_worker: task_queue")
    registry.register_activities(activities, queue)
    opts = _options(config.get("options"))
    conn = await Connection.connect(config.get("connection"))
    store = await conn.store("worker")
    ns = await NamespaceStore.open(store, config.get("namespace") or "memflow")
    worker = ActivityWorker(ns, queue, opts)
    await worker._start(opts)
    return worker
