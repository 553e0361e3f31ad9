"""Observability: OpenTelemetry traces, Prometheus metrics and replay-aware logs.

The engine calls the hooks of ``hooks`` at a handful of points (a workflow pass, its end, an
activity attempt, a claim, the sticky cache). Each costs one test when its feature is off:
tracing is on when ``opentelemetry`` is installed and a tracer provider is configured; metrics
when a worker of the process serves a ``metrics_port`` (or ``metrics.enable()`` was called).
"""

from __future__ import annotations

from memflow.observe import metrics, tracing
from memflow.observe.hooks import (
    WorkerMetrics,
    activity_attempt,
    workflow_finished,
    workflow_pass,
)
from memflow.observe.logs import JsonFormatter
from memflow.observe.tracing import use_tracer_provider

__all__ = ["JsonFormatter", "WorkerMetrics", "activity_attempt", "metrics", "tracing",
           "use_tracer_provider", "workflow_finished", "workflow_pass"]
