"""The web dashboard: ``memflow dashboard`` serves it (Starlette, Jinja2 and uvicorn, from
the ``memflow[dashboard]`` extra). Pages are rendered on the server; the one script is the
vendored htmx, for live refresh and paging. See docs/dashboard.md.
"""

from typing import Any

from memflow.dashboard.settings import DashboardSettings, check_bind, is_loopback

__all__ = ["DashboardSettings", "check_bind", "create_app", "is_loopback"]


def create_app(settings: DashboardSettings) -> Any:
    """The dashboard's ASGI app (imported lazily: the extra may not be installed)."""
    from memflow.dashboard.app import create_app as make

    return make(settings)
