"""Interrupting workflows, emitting events and tracing, from inside a workflow."""

from __future__ import annotations

import asyncio
from typing import Any

from memflow import payload
from memflow.commands import Emit, Interrupt, Trace
from memflow.durations import parse_duration
from memflow.engine.thread import current_thread
from memflow.ids import check_id
from memflow.observe import tracing


def interrupt(workflow_id: str, reason: str | None = None, throw: bool = True,
              descend: bool = False, expire: Any = None) -> asyncio.Future[Any]:
    """Interrupt a workflow (this one too): its result becomes a ``MemFlowInterruptedError``
    (or ``None`` with ``throw=False``); ``descend`` interrupts its children as well."""
    check_id(workflow_id, "workflow_id")
    thread = current_thread("workflow.interrupt()")
    doc = {"message": reason or f"workflow {workflow_id} was interrupted", "code": 410,
           "type": "MemFlowInterruptedError", "stack": "", "throw": bool(throw)}
    return thread.call(Interrupt(
        thread.counter, workflow_id, descend=bool(descend), error_json=payload.dumps(doc),
        expire_seconds=parse_duration(expire, "expire") if expire is not None else None))


def emit(events: dict[str, Any], once: bool = True) -> asyncio.Future[Any]:
    """Publish ``{topic: message}`` events; subscribers get them live (exactly once across
    replays: the emission is a recorded step)."""
    if not isinstance(events, dict) or not all(isinstance(k, str) and k for k in events):
        raise TypeError("emit takes a dict of {topic (non-empty str): message}")
    thread = current_thread("workflow.emit()")
    return thread.call(Emit(thread.counter, ",".join(events)[:200],
                            payload.dumps(events, "events")), lambda _v: True)


def trace(attributes: dict[str, Any], once: bool = True) -> asyncio.Future[Any]:
    """Record an OpenTelemetry span with ``attributes`` (when opentelemetry is installed),
    once across replays."""
    if not isinstance(attributes, dict):
        raise TypeError("trace takes a dict of attributes")
    thread = current_thread("workflow.trace()")
    if thread.counter not in thread.history:
        _span(thread, attributes)
    return thread.call(Trace(thread.counter), lambda _v: True)


def _span(thread: Any, attributes: dict[str, Any]) -> None:
    tracing.workflow_event(thread, attributes)
