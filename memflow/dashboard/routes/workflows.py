"""The workflows page: the run list with filters, keyset paging and a live-refreshed fragment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from memflow.dashboard.context import (
    UnknownNamespace,
    cached,
    chosen_namespace,
    queries,
    render,
)
from memflow.store.dashboard import RunCursor, RunFilter

STATUSES = ("pending", "running", "completed", "failed", "interrupted", "cancelled",
            "continued", "timed_out")
WITHIN = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(days=1),
          "7d": timedelta(days=7)}
PAGE_SIZE = 50
CHOICES_TTL = 60.0  # seconds the filter form's name and queue suggestions are reused
FILTER_KEYS = ("status", "name", "queue", "prefix", "since", "until", "within")


def _time(raw: str, label: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{label}: not a date and time ({raw[:40]!r}); use YYYY-MM-DDTHH:MM "
                         "(UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_filter(params: Any) -> tuple[RunFilter, dict[str, str]]:
    """The run filter of a request's query, and the raw values (to refill the form)."""
    raw = {k: (params.get(k) or "").strip() for k in FILTER_KEYS}
    status = raw["status"] or None
    if status is not None and status not in STATUSES:
        raise ValueError(f"status: unknown status {status[:40]!r}")
    since = _time(raw["since"], "from") if raw["since"] else None
    until = _time(raw["until"], "to") if raw["until"] else None
    if raw["within"]:
        if raw["within"] not in WITHIN:
            raise ValueError(f"within: unknown period {raw['within'][:20]!r}")
        recent = datetime.now(UTC) - WITHIN[raw["within"]]
        since = max(since, recent) if since else recent
    return RunFilter(status=status, name=raw["name"] or None, task_queue=raw["queue"] or None,
                     id_prefix=raw["prefix"] or None, since=since, until=until), raw


def parse_cursor(params: Any) -> RunCursor | None:
    """The keyset position of ``after_at``/``after_id`` (None for the first page)."""
    at, wid = params.get("after_at"), params.get("after_id")
    if not at or wid is None:
        return None
    return RunCursor(_time(at, "after_at"), wid)


async def _page(request: Request) -> dict[str, Any]:
    ns = chosen_namespace(request)
    context: dict[str, Any] = {"statuses": STATUSES, "within": list(WITHIN), "rows": [],
                               "counts": {}, "next": None, "error": None, "raw": {},
                               "first_page": True, "names": [], "queues": [],
                               "missing": False, "live": False, "filters": {}}
    try:
        where, raw = parse_filter(request.query_params)
        after = parse_cursor(request.query_params)
    except ValueError as exc:
        context.update(error=str(exc), raw={k: request.query_params.get(k, "")
                                            for k in FILTER_KEYS})
        return context
    context["raw"] = raw
    context["filters"] = {"ns": ns, **{k: v for k, v in raw.items() if v}}
    try:
        q = await queries(request, ns)
    except UnknownNamespace:
        context["missing"] = True
        return context
    rows = await q.list_runs(where, after, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    context.update(rows=rows, first_page=after is None, live=after is None,
                   counts=await q.status_counts())
    if more:
        last = rows[-1]
        context["next"] = {**context["filters"], "after_at": last.created_at.isoformat(),
                           "after_id": last.workflow_id}
    if not request.headers.get("hx-request"):
        context["names"], context["queues"] = await cached(
            request, ("choices", ns), CHOICES_TTL, q.filter_choices)
    return context


async def workflows_page(request: Request) -> Response:
    """GET /: the run list."""
    context = await _page(request)
    return await render(request, "workflows", status_code=400 if context["error"] else 200,
                        **context)


async def workflow_rows(request: Request) -> Response:
    """GET /workflows/rows: the list's table alone (what the live refresh polls)."""
    context = await _page(request)
    return await render(request, "_workflow_table", **context)
