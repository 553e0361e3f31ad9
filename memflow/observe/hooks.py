"""The hooks the engine calls: a workflow pass, its end, an activity attempt, and a worker's
metrics server and queue sampler. Each returns a shared no-op at its first test when neither
tracing nor metrics is on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from memflow import payload
from memflow.observe import metrics, tracing

log = logging.getLogger("memflow.worker")


class _Noop:
    """What the hooks return when nothing observes: enters and exits doing nothing."""

    async def __aenter__(self) -> _Noop:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def failed(self, error: BaseException, retrying: bool) -> None:
        """Nothing to record."""


_NOOP = _Noop()


class _Pass:
    """One workflow pass being observed: its span and its duration."""

    __slots__ = ("ns", "t0", "task", "thread")

    def __init__(self, ns: Any, thread: Any, task: Any):
        self.ns = ns
        self.thread = thread
        self.task = task
        self.t0 = 0.0

    async def __aenter__(self) -> _Pass:
        thread, task = self.thread, self.task
        self.t0 = time.perf_counter()
        start = (task.payload or {}).get("start") if task.payload else None
        if metrics.ON:
            m, ns, name = metrics.M, self.ns.namespace, thread.name
            replay = bool(thread.replaying)
            m.passes.labels(ns, name, "true" if replay else "false").inc()
            if thread.counter == 0 and not thread.history and thread.ref.dim == "" \
                    and thread.attempt == 1:
                m.started.labels(ns, name).inc()
            if start is not None and task.attempts == 1 and start.get("at") is not None:
                m.schedule_to_start.labels(ns, "workflow").observe(
                    max(0.0, time.time() - float(start["at"])))
        if tracing.tracer() is not None:
            if thread.trace is None:
                carrier = start.get("trace") if start is not None else None
                if carrier is None and not (start is not None and task.attempts == 1):
                    carrier = await self.ns.observe.run_trace(thread.ref.run_id)
                tracing.attach(thread, carrier)
            tracing.begin_pass(thread)
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        tracing.end_pass(self.thread, exc)
        if metrics.ON:
            metrics.M.pass_seconds.labels(self.ns.namespace, self.thread.name).observe(
                time.perf_counter() - self.t0)


def workflow_pass(ns: Any, thread: Any, task: Any) -> Any:
    """``async with`` around one workflow pass of ``thread`` (claimed as ``task``)."""
    if not metrics.ON and thread.trace is None and tracing.tracer() is None:
        return _NOOP
    return _Pass(ns, thread, task)


def workflow_finished(thread: Any, finish: tuple[str, str | None, str | None] | None,
                      outcome: Any) -> None:
    """A pass tried to end its thread with ``finish=(status, result, error)``; ``outcome`` (a
    PassOutcome) says whether that was committed."""
    if finish is None or not outcome.alive or getattr(outcome, "refused", None) is not None \
            or thread.ref.dim != "":
        return
    if metrics.ON:
        metrics.M.completed.labels(thread.namespace, thread.name, finish[0]).inc()
    if thread.trace is not None:
        tracing.finished(thread, finish[0], payload.loads(finish[2]) if finish[2] else None)


class _Attempt:
    """One activity attempt being observed."""

    __slots__ = ("kind", "name", "namespace", "span", "t0", "task")

    def __init__(self, namespace: str, task: Any, name: str):
        self.namespace = namespace
        self.task = task
        self.name = name
        self.span: tracing.ActivitySpan | None = None
        self.t0 = 0.0

    def __enter__(self) -> _Attempt:
        task, p = self.task, self.task.payload or {}
        self.t0 = time.perf_counter()
        if metrics.ON:
            metrics.M.attempts.labels(self.namespace, self.name).inc()
            if task.attempts == 1 and p.get("at") is not None:
                metrics.M.schedule_to_start.labels(self.namespace, "activity").observe(
                    max(0.0, time.time() - float(p["at"])))
        if tracing.tracer() is not None:
            self.span = tracing.ActivitySpan(p.get("trace"), self.name, {
                "memflow.attempt": task.attempts, "memflow.workflow_id": p.get("workflow_id", ""),
                "memflow.run_id": task.run_id})
        return self

    def failed(self, error: BaseException, retrying: bool) -> None:
        """The attempt raised ``error`` (``retrying``: another attempt will follow)."""
        if metrics.ON:
            metrics.M.failures.labels(self.namespace, self.name).inc()
        if self.span is not None:
            self.span.failed(error, retrying)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if metrics.ON:
            metrics.M.activity_seconds.labels(self.namespace, self.name).observe(
                time.perf_counter() - self.t0)
        if self.span is not None:
            if exc is not None:
                self.span.failed(exc, False)
            self.span.end()


def activity_attempt(namespace: str, task: Any, name: str) -> Any:
    """``with`` around one activity attempt; call ``.failed(error, retrying)`` on failure."""
    if not metrics.ON and tracing.tracer() is None:
        return _NOOP
    return _Attempt(namespace, task, name)


class WorkerMetrics:
    """A worker's share of the metrics: the ``/metrics`` server on its port, and a sampler
    that reads its queues' depth and oldest ready age with one query every ``interval``."""

    def __init__(self, ns: Any, queues: list[str], port: int, interval: float = 5.0):
        self.ns = ns
        self.queues = queues
        self.interval = interval
        self.port = metrics.serve(port)
        self._sampler = asyncio.create_task(self._sample(), name="memflow-metrics-sampler")

    async def _sample(self) -> None:
        while True:
            try:
                stats = await self.ns.observe.queue_stats(self.queues)
                metrics.queue_stats(self.ns.namespace, stats)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("sampling queue metrics failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop sampling and release the port."""
        self._sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sampler
        metrics.release(self.port)
