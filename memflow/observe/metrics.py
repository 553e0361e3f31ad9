"""Prometheus metrics (``pip install memflow[metrics]``), served by workers on ``/metrics``.

Nothing is counted until a worker of the process asks for a ``metrics_port`` (or ``enable()``
is called); until then each hook returns at its first test. The metrics live in
prometheus_client's default registry, so an application's own metrics are served alongside.
"""

from __future__ import annotations

import threading
from typing import Any

try:
    import prometheus_client as _prom
except ImportError:  # pragma: no cover - exercised without the extra installed
    _prom = None  # type: ignore[assignment]

INSTALLED = _prom is not None
ON = False  # set by enable(): the hooks below count only when it is true

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0, 300.0)
_lock = threading.Lock()
M: Any = None  # the metric objects, once enabled


class _Metrics:
    """The metric families MemFlow exports."""

    def __init__(self) -> None:
        p = _prom
        ns_name = ["namespace", "workflow"]
        self.started = p.Counter("memflow_workflows_started", "Workflow runs whose first pass "
                                 "ran (children included)", ns_name)
        self.completed = p.Counter("memflow_workflows_completed", "Workflow runs ended by a "
                                   "pass, by status (completed, failed)", [*ns_name, "status"])
        self.passes = p.Counter("memflow_workflow_passes", "Workflow passes run (replay: the "
                                "pass rebuilt the thread from its history)", [*ns_name, "replay"])
        self.pass_seconds = p.Histogram("memflow_workflow_pass_seconds", "Duration of workflow "
                                        "passes, commit included", ns_name,
                                        buckets=_LATENCY_BUCKETS)
        self.attempts = p.Counter("memflow_activity_attempts", "Activity attempts started",
                                  ["namespace", "activity"])
        self.failures = p.Counter("memflow_activity_failures", "Activity attempts that raised "
                                  "(retried or final)", ["namespace", "activity"])
        self.activity_seconds = p.Histogram("memflow_activity_seconds", "Duration of activity "
                                            "attempts", ["namespace", "activity"],
                                            buckets=_LATENCY_BUCKETS)
        self.schedule_to_start = p.Histogram(
            "memflow_schedule_to_start_seconds", "From a task being scheduled to a worker "
            "starting it (first attempts; kind: workflow or activity)", ["namespace", "kind"],
            buckets=_LATENCY_BUCKETS)
        self.depth = p.Gauge("memflow_queue_depth", "Tasks of a queue by state (ready, leased, "
                             "delayed), sampled by workers every few seconds",
                             ["namespace", "queue", "state"])
        self.oldest = p.Gauge("memflow_queue_oldest_ready_seconds", "Age of the oldest ready "
                              "task of a queue, sampled by workers", ["namespace", "queue"])
        self.cache = p.Counter("memflow_cache", "Sticky cache lookups and drops by event (hit, "
                               "miss, eviction)", ["event"])
        self.lease_expiries = p.Counter("memflow_lease_expiries", "Workflow pass tasks claimed "
                                        "again (attempts > 1): a lease ran out, or a worker gave "
                                        "the pass back after an error", ["namespace", "queue"])
        self.notify = p.Counter("memflow_notify_wakeups", "Notifications received that had "
                                "subscribers, by kind (q: work ready, d: workflow done, "
                                "e: event)", ["kind"])


def enable() -> None:
    """Start counting (idempotent). Raises ImportError without prometheus_client."""
    global ON, M
    if _prom is None:
        raise ImportError("MemFlow metrics need prometheus_client: "
                          "pip install 'memflow[metrics]'")
    with _lock:
        if M is None:
            M = _Metrics()
        ON = True


def disable() -> None:
    """Stop counting (the values so far stay); for benchmarks and tests."""
    global ON
    ON = False


class _Server:
    def __init__(self, port: int, addr: str):
        self.httpd, self.thread = _prom.start_http_server(port, addr=addr)
        self.port = int(self.httpd.server_address[1])
        self.users = 0


_servers: dict[tuple[str, int], _Server] = {}


def serve(port: int, addr: str = "0.0.0.0") -> int:
    """Serve ``/metrics`` on ``port`` (0: any free port), shared by the workers of the process
    asking for the same port; returns the port. Call ``release(port)`` when done."""
    enable()
    with _lock:
        server = _servers.get((addr, port)) if port else None
        if server is None:
            server = _Server(port, addr)
            _servers[(addr, server.port)] = server
        server.users += 1
        return server.port


def release(port: int, addr: str = "0.0.0.0") -> None:
    """A worker no longer serves ``port``: the server stops with its last user."""
    with _lock:
        server = _servers.get((addr, port))
        if server is None:
            return
        server.users -= 1
        if server.users <= 0:
            del _servers[(addr, port)]
            server.httpd.shutdown()
            server.httpd.server_close()


def cache(event: str) -> None:
    """Count a sticky-cache event: hit, miss or eviction."""
    if ON:
        M.cache.labels(event).inc()


def notified(payload: str) -> None:
    """Count a notification that woke subscribers."""
    if ON:
        M.notify.labels(payload[:1]).inc()


def claimed(namespace: str, tasks: list[Any]) -> None:
    """Count pass tasks claimed again (their previous holder's lease ran out)."""
    if ON:
        for task in tasks:
            if task.kind == "w" and task.attempts > 1:
                M.lease_expiries.labels(namespace, task.queue).inc()


def queue_stats(namespace: str, rows: list[dict[str, Any]]) -> None:
    """Set the queue gauges from one ``queue_stats`` sample."""
    if ON:
        for row in rows:
            for state in ("ready", "leased", "delayed"):
                M.depth.labels(namespace, row["queue"], state).set(row[state])
            M.oldest.labels(namespace, row["queue"]).set(row["oldest_ready_s"])
