"""The dashboard's ASGI application: routes, static files, start-up and shut-down."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from memflow.client import Client
from memflow.connection import Connection
from memflow.dashboard.context import DashboardState, render
from memflow.dashboard.routes.actions import action
from memflow.dashboard.routes.queues import queues_page
from memflow.dashboard.routes.run import run_page, run_steps, run_summary
from memflow.dashboard.routes.schedules import schedules_page
from memflow.dashboard.routes.workflows import workflow_rows, workflows_page
from memflow.dashboard.security import GuardMiddleware
from memflow.dashboard.settings import DashboardSettings
from memflow.dashboard.templating import environment
from memflow.store.base import validate_namespace

STATIC = Path(__file__).parent / "static"


async def _bad_request(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/static"):
        return PlainTextResponse(str(exc), status_code=400)
    request.scope["query_string"] = b""
    return await render(request, "message", status_code=400, message=str(exc))


def create_app(settings: DashboardSettings) -> Starlette:
    """The dashboard app for ``settings`` (serve it with any ASGI server)."""
    validate_namespace(settings.namespace)
    state = DashboardState(settings=settings, templates=environment())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connection = await Connection.connect(settings.database_url)
        state.store = await connection.store("dashboard")
        state.client = Client(connection=connection, namespace=settings.namespace)
        try:
            yield
        finally:
            await state.client.close()
            await state.store.close()

    routes = [
        Route("/", workflows_page),
        Route("/workflows/rows", workflow_rows),
        Route("/run", run_page),
        Route("/run/steps", run_steps),
        Route("/run/summary", run_summary),
        Route("/queues", queues_page),
        Route("/schedules", schedules_page),
        Route("/action/{name}", action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(GuardMiddleware, token=settings.token)],
                    exception_handlers={ValueError: _bad_request})
    app.state.dashboard = state
    return app
