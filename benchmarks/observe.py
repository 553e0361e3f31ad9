"""W1 with tracing and metrics on and off (issue #17), in one run of the harness.

``python -m benchmarks W1-observe [--n N] [--runs R]`` runs W1 R times (default 3) in each
mode — ``off``; ``tracing`` (an OpenTelemetry SDK tracer provider with a batch processor and
an exporter that drops the spans, so the cost measured is MemFlow's and the SDK's, not a
collector's); ``metrics`` (the worker serves ``/metrics`` on a free port, nobody scrapes);
``tracing_sampled`` (like ``tracing``, sampling 10% of the traces with
``ParentBased(TraceIdRatioBased(0.1))``) — rotating the order each round. It prints the
medians and the overheads in percent of ``off``'s median ``total_s`` (wall clock) and of its
median CPU time of this process (driver and worker: the Python side, where the
instrumentation runs; less sensitive to other load on the machine than the wall clock).
``--tracing`` / ``--metrics`` turn the same on for any workload.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks import common, standard
from benchmarks.common import base_line

MODES = ("off", "tracing", "metrics", "tracing_sampled")
SAMPLED_RATIO = 0.1


class _DropSpans:
    """A span exporter that counts spans and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered here."""
        return True


@contextlib.contextmanager
def observing(tracing: bool, metrics: bool,
              ratio: float | None = None) -> Iterator[_DropSpans | None]:
    """Turn MemFlow's tracing (sampling ``ratio`` of the traces, default all) and/or metrics
    on for the workloads run inside."""
    from memflow import observe

    exporter = provider = None
    if tracing:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        exporter = _DropSpans()
        provider = TracerProvider(sampler=None if ratio is None
                                  else ParentBased(TraceIdRatioBased(ratio)))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        observe.use_tracer_provider(provider)
    if metrics:
        common.WORKER_OPTIONS["metrics_port"] = 0
    try:
        yield exporter
    finally:
        if provider is not None:
            provider.shutdown()
            observe.use_tracer_provider(None)
        common.WORKER_OPTIONS.pop("metrics_port", None)
        observe.metrics.disable()


async def w1_observe(opts: Any) -> dict[str, Any]:
    """W1 off / with tracing / with metrics, ``--runs`` times each; medians and overheads."""
    rounds = max(1, int(opts.runs or 3))
    sub = argparse.Namespace(**{**vars(opts), "floor_seconds": 0})
    totals: dict[str, list[float]] = {m: [] for m in MODES}
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    p50s: dict[str, list[float]] = {m: [] for m in MODES}
    cpus: dict[str, list[float]] = {m: [] for m in MODES}
    spans = 0
    for r in range(rounds):
        for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
            cpu0 = time.process_time()
            with observing(mode.startswith("tracing"), mode == "metrics",
                           SAMPLED_RATIO if mode == "tracing_sampled" else None) as exporter:
                line = await standard.w1(sub)
            cpus[mode].append(round(time.process_time() - cpu0, 3))
            if exporter is not None and mode == "tracing":
                spans += exporter.spans
            totals[mode].append(line["total_s"])
            rates[mode].append(line["workflows_per_s"])
            p50s[mode].append(line["p50_ms"])
    out = base_line("W1-observe", int(opts.n or standard.W1_N))
    median = {m: statistics.median(totals[m]) for m in MODES}
    for m in MODES:
        out[f"total_s_{m}"] = round(median[m], 3)
        out[f"workflows_per_s_{m}"] = round(statistics.median(rates[m]), 1)
        out[f"p50_ms_{m}"] = round(statistics.median(p50s[m]), 1)
        out[f"total_s_{m}_runs"] = totals[m]
        out[f"cpu_s_{m}"] = statistics.median(cpus[m])
    cpu = {m: statistics.median(cpus[m]) for m in MODES}
    out["tracing_overhead_pct"] = round((median["tracing"] / median["off"] - 1) * 100, 1)
    out["metrics_overhead_pct"] = round((median["metrics"] / median["off"] - 1) * 100, 1)
    out["tracing_sampled_overhead_pct"] = round(
        (median["tracing_sampled"] / median["off"] - 1) * 100, 1)
    out["tracing_cpu_overhead_pct"] = round((cpu["tracing"] / cpu["off"] - 1) * 100, 1)
    out["tracing_sampled_cpu_overhead_pct"] = round(
        (cpu["tracing_sampled"] / cpu["off"] - 1) * 100, 1)
    out["metrics_cpu_overhead_pct"] = round((cpu["metrics"] / cpu["off"] - 1) * 100, 1)
    out["spans_per_run"] = round(spans / rounds, 1)
    out["runs"] = rounds
    return out
