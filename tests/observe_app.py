"""Workflows and activities of the observability tests, and a process that serves the
``remote`` activities with spans exported to a JSON-lines file:
``python -m tests.observe_app DSN NAMESPACE SPAN_FILE``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from memflow import activity, workflow

FAILED_ONCE: set[str] = set()


def greet(name: str) -> str:
    """An activity that logs through ``memflow.activity.logger``."""
    activity.logger.info("greeting %s", name)
    return f"hi {name}"


def flaky(key: str) -> str:
    """Fails its first attempt (per key, per process), then succeeds."""
    if key not in FAILED_ONCE:
        FAILED_ONCE.add(key)
        raise RuntimeError(f"first attempt of {key} fails")
    return f"ok {key}"


def remote_upper(text: str) -> str:
    """Served by the subprocess."""
    return text.upper()


ACTIVITIES = [greet, flaky]
acts = workflow.proxy_activities(activities=ACTIVITIES,
                                 retry_policy={"maximum_attempts": 3, "initial_interval": 0.05})
remote = workflow.proxy_activities(task_queue="remote")


async def kid(name: str) -> str:
    """A child workflow with one activity."""
    return await acts.greet(f"kid {name}")


async def traced(name: str) -> str:
    """Two activities (one retried), a ``workflow.trace``, a child, and logs in between."""
    workflow.logger.info("starting %s", name)
    a = await acts.greet(name)
    workflow.logger.info("greeted %s", name)
    b = await acts.flaky(name)
    await workflow.trace({"step": "after-flaky"})
    c = await workflow.exec_child(args=[name], workflow_name="kid")
    workflow.logger.info("done %s", name)
    return f"{a}|{b}|{c}"


WORKFLOWS = [traced, kid]


async def two_steps(name: str) -> str:
    """Two activities in sequence."""
    a = await acts.greet(name)
    b = await acts.flaky(name)
    return f"{a}|{b}"


async def crosses(name: str) -> str:
    """A local activity, then one served by another process."""
    a = await acts.greet(name)
    return f"{a}|{await remote.remote_upper(name)}"


class JsonLinesExporter:
    """A span exporter writing one JSON object per span to a file."""

    def __init__(self, path: str):
        self.path = path

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        with open(self.path, "a") as out:
            for s in spans:
                out.write(json.dumps(span_record(s)) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Spans are written as they end."""
        return True


def span_record(s: Any) -> dict[str, Any]:
    """What the tests compare of a span."""
    return {"name": s.name, "trace_id": f"{s.context.trace_id:032x}",
            "span_id": f"{s.context.span_id:016x}",
            "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
            "attributes": dict(s.attributes or {}), "status": s.status.status_code.name}


async def main() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from memflow import observe, register_activity_worker

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(sys.argv[3])))
    observe.use_tracer_provider(provider)
    worker = await register_activity_worker(
        {"connection": sys.argv[1], "task_queue": "remote", "namespace": sys.argv[2]},
        [remote_upper], "remote")
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
