"""OpenTelemetry traces: one trace from a client's start through every pass and activity.

The trace context travels as a W3C carrier (``{"traceparent": ..., "tracestate": ...}``) in
what crosses processes: the run's row and its first-pass payload (``trace``), and each
activity task's payload. A workflow pass is a span ``RunWorkflow:<name>`` whose parent is the
context the run was started under (the client's ``StartWorkflow:<name>`` span, or the parent
workflow's pass for a child); each activity attempt is ``RunActivity:<name>`` under the pass
that scheduled it. Replayed passes are marked ``memflow.replay=true`` and schedule nothing new,
so they add no activity span.

Without ``opentelemetry`` installed, or with no tracer provider configured, every function
here returns at its first test (nothing is created, nothing is injected).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from memflow import payload

try:
    from opentelemetry import context as _context
    from opentelemetry import trace as _trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised without the extra installed
    _trace = None  # type: ignore[assignment]

INSTALLED = _trace is not None
TRACER_NAME = "memflow"

_override: Any = None      # a provider given by use_tracer_provider (else the global one)
_seen: Any = object()      # the provider _tracer was made from
_tracer: Any = None        # None while tracing is off


def use_tracer_provider(provider: Any) -> None:
    """Make MemFlow trace with ``provider`` instead of OpenTelemetry's global provider
    (``None`` goes back to the global one). Handy in tests and to trace MemFlow alone."""
    global _override
    _override = provider


def tracer() -> Any:
    """The tracer MemFlow records with, or None when tracing is off (OpenTelemetry missing,
    or no tracer provider configured)."""
    global _seen, _tracer
    if _trace is None:
        return None
    provider = _override if _override is not None else _trace.get_tracer_provider()
    if provider is not _seen:
        _seen = provider
        noop = isinstance(provider, _trace.ProxyTracerProvider | _trace.NoOpTracerProvider)
        _tracer = None if noop else provider.get_tracer(TRACER_NAME)
    return _tracer


# The carrier is MemFlow's own (it travels in MemFlow's rows and payloads, between MemFlow
# processes), so it is always W3C trace context, written and read here directly: cheaper than
# the configurable global propagator, and independent of how the application propagates.
def _carrier_of(span: Any) -> dict[str, str] | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    carrier = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
    if ctx.trace_state:
        carrier["tracestate"] = ctx.trace_state.to_header()
    return carrier


_contexts: dict[str, Any] = {}  # recent carriers read, by traceparent (contexts are immutable)


def _parent(carrier: Any) -> Any:
    if not isinstance(carrier, dict):
        return None
    header = carrier.get("traceparent")
    if not isinstance(header, str):
        return None
    found = _contexts.get(header)
    if found is None:
        found = _read(header, carrier.get("tracestate"))
        if len(_contexts) >= 4096:
            _contexts.clear()
        _contexts[header] = found
    return found


def _read(header: str, state: Any) -> Any:
    parts = header.split("-")
    try:
        if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
            raise ValueError(header)
        ctx = _trace.SpanContext(int(parts[1], 16), int(parts[2], 16), is_remote=True,
                                 trace_flags=_trace.TraceFlags(int(parts[3], 16)),
                                 trace_state=_trace.TraceState.from_header([state])
                                 if isinstance(state, str) and state else None)
    except ValueError:
        return None
    return _trace.set_span_in_context(_trace.NonRecordingSpan(ctx)) if ctx.is_valid else None


def _value(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) else payload.dumps(value)


@contextlib.contextmanager
def client_span(operation: str, name: str | None,
                attributes: dict[str, Any]) -> Iterator[Any]:
    """A span ``<operation>:<name>`` (``<operation>`` without a name; kind CLIENT) around a
    client call, child of the caller's current span; yields it (None when tracing is off).
    Used for ``StartWorkflow`` and ``SignalWorkflow``; queries and updates are meant to use
    it as ``QueryWorkflow`` and ``UpdateWorkflow`` once they exist."""
    t = tracer()
    if t is None:
        yield None
        return
    with t.start_as_current_span(f"{operation}:{name}" if name else operation,
                                 kind=SpanKind.CLIENT,
                                 attributes={k: _value(v) for k, v in attributes.items()
                                             if v is not None}) as span:
        yield span


def carrier_json(span: Any) -> str | None:
    """The carrier of ``span`` as JSON text (for the ``trace`` column), or None."""
    if span is None:
        return None
    carrier = _carrier_of(span)
    return payload.dumps(carrier) if carrier else None


@dataclass
class ThreadTrace:
    """What a workflow thread knows of its trace: the context its run was started under,
    and the span of the pass running now (None between passes)."""

    carrier: dict[str, str] | None
    parent: Any = None  # the carrier extracted (once) as an OpenTelemetry context
    span: Any = None
    span_carrier: dict[str, str] | None = None


def attach(thread: Any, carrier: Any) -> None:
    """Give ``thread`` its run's trace context (once known)."""
    known = carrier if isinstance(carrier, dict) and carrier else None
    thread.trace = ThreadTrace(known, _parent(known) if known and _trace is not None else None)


def begin_pass(thread: Any) -> Any:
    """Open the span of the pass running now (if not open yet); returns it or None."""
    state: ThreadTrace | None = thread.trace
    t = tracer()
    if state is None or t is None or thread.closing:
        return None
    if state.span is None:
        ref = thread.ref
        attributes = {"memflow.workflow_id": ref.workflow_id, "memflow.run_id": ref.run_id,
                      "memflow.replay": bool(thread.replaying)}
        if thread.attempt > 1:
            attributes["memflow.attempt"] = thread.attempt
        if ref.dim:
            attributes["memflow.dimension"] = ref.dim
        state.span = t.start_span(f"RunWorkflow:{thread.name}", context=state.parent,
                                  kind=SpanKind.SERVER, attributes=attributes)
        state.span_carrier = None
    return state.span


def end_pass(thread: Any, error: BaseException | None = None) -> None:
    """Close the span of the pass that just ended."""
    state: ThreadTrace | None = thread.trace
    if state is None or state.span is None:
        return
    span, state.span = state.span, None
    if error is not None and not isinstance(error, GeneratorExit):
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


def finished(thread: Any, status: str, error: dict[str, Any] | None) -> None:
    """Mark the open pass span with how the workflow ended."""
    state: ThreadTrace | None = thread.trace
    if state is None or state.span is None:
        return
    state.span.set_attribute("memflow.outcome", status)
    if status == "failed":
        message = str((error or {}).get("message", "workflow failed"))
        state.span.set_status(Status(StatusCode.ERROR, message))


def thread_carrier(thread: Any) -> dict[str, str] | None:
    """The carrier of the pass running ``thread`` now, for the work it schedules (activities,
    children): opens the pass span if the pass has not opened it yet."""
    state: ThreadTrace | None = thread.trace
    if state is None:
        return None
    if state.span is None and begin_pass(thread) is None:
        return state.carrier
    if state.span_carrier is None:
        state.span_carrier = _carrier_of(state.span)
    return state.span_carrier


def thread_carrier_json(thread: Any) -> str | None:
    """``thread_carrier`` as JSON text (a child's ``trace``), or None."""
    carrier = thread_carrier(thread)
    return payload.dumps(carrier) if carrier else None


def workflow_event(thread: Any, attributes: dict[str, Any]) -> None:
    """The span of a ``workflow.trace(attributes)`` call, inside the pass that made it."""
    t = tracer()
    if t is None or thread.closing:
        return
    carrier = thread_carrier(thread)
    span = t.start_span(f"memflow.{thread.name}", context=_parent(carrier),
                        kind=SpanKind.INTERNAL)
    span.set_attribute("memflow.workflow_id", thread.ref.workflow_id)
    span.set_attribute("memflow.run_id", thread.ref.run_id)
    span.set_attribute("memflow.namespace", thread.namespace)
    for key, value in attributes.items():
        span.set_attribute(str(key), _value(value))
    span.end()


class ActivitySpan:
    """The span of one activity attempt, current while the activity runs."""

    __slots__ = ("span", "token")

    def __init__(self, carrier: Any, name: str, attributes: dict[str, Any]):
        t = tracer()
        self.span = t.start_span(f"RunActivity:{name}", context=_parent(carrier),
                                 kind=SpanKind.SERVER, attributes=attributes)
        self.token = _context.attach(_trace.set_span_in_context(self.span))

    def failed(self, error: BaseException, retrying: bool) -> None:
        """Record the attempt's error (the span's status becomes ERROR)."""
        self.span.record_exception(error)
        self.span.set_attribute("memflow.retrying", retrying)
        self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def end(self) -> None:
        """Detach and end the span."""
        _context.detach(self.token)
        self.span.end()
