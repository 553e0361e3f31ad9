"""What every page shares: the app's state, the chosen namespace and rendering."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from memflow.client import Client
from memflow.dashboard.settings import DashboardSettings
from memflow.store import NamespaceStore, Store, validate_namespace
from memflow.store.admin import memflow_namespaces
from memflow.store.dashboard import DashboardQueries

T = TypeVar("T")


@dataclass
class DashboardState:
    """Shared by every request of one app: settings, store, client and templates."""

    settings: DashboardSettings
    templates: jinja2.Environment
    store: Store | None = None
    client: Client | None = None
    namespaces: dict[str, NamespaceStore] = field(default_factory=dict)
    cache: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)


class UnknownNamespace(LookupError):
    """The namespace asked for has no MemFlow tables."""


def state_of(request: Request) -> DashboardState:
    """The app's shared state."""
    state: DashboardState = request.app.state.dashboard
    return state


def chosen_namespace(request: Request) -> str:
    """The ``ns`` query parameter (validated), else the dashboard's default namespace."""
    raw = request.query_params.get("ns") or state_of(request).settings.namespace
    return validate_namespace(raw)


async def namespace_list(request: Request) -> list[str]:
    """The MemFlow namespaces of the database (schemas holding MemFlow's tables)."""
    state = state_of(request)
    assert state.store is not None
    return await memflow_namespaces(state.store)


async def queries(request: Request, namespace: str) -> DashboardQueries:
    """The dashboard reads of ``namespace``; ``UnknownNamespace`` unless it exists already
    (the dashboard never creates a namespace)."""
    state = state_of(request)
    assert state.store is not None
    ns = state.namespaces.get(namespace)
    if ns is None:
        if namespace not in await namespace_list(request):
            raise UnknownNamespace(namespace)
        ns = await NamespaceStore.open(state.store, namespace)
        state.namespaces[namespace] = ns
    return DashboardQueries(ns)


async def cached(request: Request, key: tuple[str, str], ttl: float,
                 compute: Callable[[], Awaitable[T]]) -> T:
    """``compute()``, remembered for ``ttl`` seconds under ``key`` (for slow-changing reads)."""
    cache = state_of(request).cache
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < ttl:
        value: T = hit[1]
        return value
    value = await compute()
    cache[key] = (now, value)
    return value


def client_of(request: Request) -> Client:
    """The dashboard's client: every action goes through its public API."""
    client = state_of(request).client
    assert client is not None
    return client


async def render(request: Request, template: str, status_code: int = 200,
                 **context: Any) -> HTMLResponse:
    """Render ``template`` with the page context every template may use."""
    ns = context.pop("namespace", None) or chosen_namespace(request)
    fragment = template.startswith("_")
    base: dict[str, Any] = {
        "request": request, "ns": ns, "csrf": request.state.csrf,
        "path": request.url.path, "notice": context.pop("notice", None),
    }
    if not fragment:
        base["namespaces"] = await namespace_list(request)
    html = state_of(request).templates.get_template(
        template if template.endswith(".html") else f"{template}.html").render(
        **base, **context)
    return HTMLResponse(html, status_code=status_code)
