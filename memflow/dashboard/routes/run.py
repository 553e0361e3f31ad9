"""The run page: status, arguments, result or error, the timeline, entity, search fields,
children and parent, pending waits, and the action forms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from memflow.dashboard import timeline
from memflow.dashboard.context import (
    UnknownNamespace,
    chosen_namespace,
    client_of,
    queries,
    render,
)
from memflow.store.dashboard import DashboardQueries

STEP_PAGE = 500
LIVE = ("pending", "running")


def _after(raw: str | None) -> tuple[str, int] | None:
    """A steps cursor ``"<idx>:<dim>"`` (the last step shown), or None."""
    if not raw:
        return None
    idx, sep, dim = raw.partition(":")
    if not sep or not idx.lstrip("-").isdigit():
        raise ValueError("after: expected <index>:<thread>")
    return dim, int(idx)


def _run_param(request: Request) -> str | None:
    """The ``run`` of the page's query (an earlier run of the id), for its links."""
    return request.query_params.get("run") or None


async def _lookup(request: Request) -> tuple[DashboardQueries | None, dict[str, Any] | None,
                                              str]:
    ns = chosen_namespace(request)
    workflow_id = request.query_params.get("id", "")
    try:
        q = await queries(request, ns)
    except UnknownNamespace:
        return None, None, workflow_id
    row = await q.run(workflow_id, _run_param(request)) if workflow_id else None
    return q, row, workflow_id


async def _steps_context(request: Request, q: DashboardQueries, row: dict[str, Any],
                         after: tuple[str, int] | None) -> dict[str, Any]:
    threads = await q.threads(row["run_id"])
    names = {t.dim: t.name for t in threads}
    steps = await q.steps(row["run_id"], after=after, limit=STEP_PAGE + 1)
    more = len(steps) > STEP_PAGE
    steps = steps[:STEP_PAGE]
    bars = timeline.layout(steps, row["created_at"], row["completed_at"])
    last = steps[-1] if more else None
    return {"bars": bars, "labels": {t.dim: timeline.thread_label(t.dim, names)
                                     for t in threads},
            "threads": threads, "lanes": timeline.lanes(bars),
            "more": f"{last.idx}:{last.dim}" if last else None,
            "total_steps": sum(t.steps for t in threads)}


async def run_page(request: Request) -> Response:
    """GET /run?id=…[&run=…]: one run in full (the id's current run, or its run ``run``)."""
    q, row, workflow_id = await _lookup(request)
    if q is None or row is None:
        return await render(request, "run_missing", status_code=404, workflow_id=workflow_id,
                            missing_namespace=q is None)
    try:
        after = _after(request.query_params.get("after"))
    except ValueError as exc:
        return await render(request, "run_missing", status_code=400, workflow_id=workflow_id,
                            missing_namespace=False, error=str(exc))
    context = await _steps_context(request, q, row, after)
    waits = await q.pending_waits(row["run_id"])
    handle = client_of(request).workflow.get_handle(workflow_id=workflow_id,
                                                    namespace=chosen_namespace(request))
    context.update(
        run=row, children=await q.children(row["run_id"]), waits=waits,
        kept=await q.kept_signals([w.name for w in waits if w.kind == "wait" and w.name]),
        live=row["status"] in LIVE, can_cancel=callable(getattr(handle, "cancel", None)),
        signal_default=next((w.name for w in waits if w.kind == "wait"), ""),
        done=request.query_params.get("done"), now=datetime.now(UTC), after=after,
        run_param=_run_param(request))
    return await render(request, "run", **context)


async def run_steps(request: Request) -> Response:
    """GET /run/steps?id=…&after=…: the next page of timeline rows (the "more" button)."""
    q, row, workflow_id = await _lookup(request)
    if q is None or row is None:
        return await render(request, "_note", status_code=404,
                            message=f"workflow {workflow_id} not found")
    try:
        after = _after(request.query_params.get("after"))
    except ValueError as exc:
        return await render(request, "_note", status_code=400, message=str(exc))
    context = await _steps_context(request, q, row, after)
    return await render(request, "_step_rows", run=row, run_param=_run_param(request),
                        **context)


async def run_summary(request: Request) -> Response:
    """GET /run/summary?id=…: the status card alone (polled while the run is live)."""
    q, row, workflow_id = await _lookup(request)
    if q is None or row is None:
        return await render(request, "_note", status_code=404,
                            message=f"workflow {workflow_id} not found")
    return await render(request, "_run_summary", run=row, live=row["status"] in LIVE,
                        now=datetime.now(UTC), run_param=_run_param(request))
