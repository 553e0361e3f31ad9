"""The queues page: per task queue, tasks ready, running and delayed, the oldest wait, recent
throughput, and the limits set with ``client.queue.configure`` (where memflow has them)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from memflow.dashboard.context import (
    UnknownNamespace,
    chosen_namespace,
    client_of,
    queries,
    render,
)

WINDOW = 300.0


async def _limits(request: Request, queue: str) -> Any:
    """The queue's flow-control limits, or None when memflow has no ``client.queue``."""
    queues = getattr(client_of(request), "queue", None)
    if queues is None:
        return None
    with contextlib.suppress(Exception):
        limits = getattr(await queues.describe(queue, namespace=chosen_namespace(request)),
                         "limits", None) or {}
        return {k: v for k, v in limits.items() if v is not None} or None  # only those set
    return None


async def queues_page(request: Request) -> Response:
    """GET /queues."""
    try:
        q = await queries(request, chosen_namespace(request))
    except UnknownNamespace:
        return await render(request, "queues", rows=[], kept=0, missing=True, limits={},
                            window=WINDOW, now=datetime.now(UTC))
    rows = await q.queues(WINDOW)
    limits = {r.queue: await _limits(request, r.queue) for r in rows}
    return await render(request, "queues", rows=rows, kept=await q.kept_signal_total(),
                        missing=False, limits=limits, window=WINDOW, now=datetime.now(UTC))
