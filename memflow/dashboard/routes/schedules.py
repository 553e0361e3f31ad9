"""The schedules page: each schedule with its next runs, and pause/unpause/trigger.

It reads ``client.schedule.list`` where memflow has schedules; otherwise the store's
``schedules`` read, which answers None when the namespace has no schedules table.
"""

from __future__ import annotations

import dataclasses
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


def _as_dict(item: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    return dict(item) if isinstance(item, dict) else {"schedule_id": str(item)}


async def schedules_page(request: Request) -> Response:
    """GET /schedules."""
    ns = chosen_namespace(request)
    api = getattr(client_of(request), "schedule", None)
    try:
        q = await queries(request, ns)
    except UnknownNamespace:
        return await render(request, "schedules", schedules=[], installed=api is not None,
                            missing=True, done=None)
    if api is not None:
        items = [_as_dict(d) for d in await api.list(namespace=ns)]
    else:
        items = await q.schedules() or []
    return await render(request, "schedules", schedules=items, installed=api is not None,
                        missing=False, done=request.query_params.get("done"))
