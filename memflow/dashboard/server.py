"""Serving the dashboard with uvicorn, after the bind-address check."""

from __future__ import annotations

import uvicorn

from memflow.dashboard.app import create_app
from memflow.dashboard.settings import DashboardSettings, check_bind


def login_url(settings: DashboardSettings) -> str:
    """The address to open (with the ``?token=`` login link when a token is set)."""
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1"
    url = f"http://{host}:{settings.port}/"
    return f"{url}?token=<your token>" if settings.token else url


def serve(settings: DashboardSettings) -> None:
    """Serve the dashboard until interrupted; ``ValueError`` on an unsafe bind."""
    check_bind(settings.host, settings.token)
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run()
