"""``memflow dashboard``: serve the web dashboard (needs the ``memflow[dashboard]`` extra)."""

from __future__ import annotations

import click

from memflow.cli.common import DEFAULT_NAMESPACE, fail, note, validate_namespace_option


@click.command("dashboard", short_help="Serve the web dashboard (default http://127.0.0.1:8233).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; any non-loopback one needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8233, show_default=True)
@click.option("--namespace", "-n", envvar="MEMFLOW_NAMESPACE", default=DEFAULT_NAMESPACE,
              show_default=True, callback=validate_namespace_option,
              help="Namespace shown first (others are a click away).")
@click.option("--token", envvar="MEMFLOW_DASHBOARD_TOKEN", default=None,
              help="Access token every request must carry [env: MEMFLOW_DASHBOARD_TOKEN].")
@click.option("--database-url", envvar="MEMFLOW_DATABASE_URL", default=None, metavar="DSN",
              help="Postgres DSN [default: $MEMFLOW_DATABASE_URL, else the embedded Postgres].")
def dashboard_command(host: str, port: int, namespace: str, token: str | None,
                      database_url: str | None) -> None:
    """Serve the web dashboard: workflows, runs and their timelines, queues, schedules.

    It binds to 127.0.0.1 by default. On any other interface it refuses to start without a
    token, and every request must then carry it (open the printed login link once).
    """
    try:
        from memflow.dashboard.server import login_url, serve
        from memflow.dashboard.settings import DashboardSettings, check_bind
    except ImportError as exc:
        fail(f"the dashboard needs its extra: pip install 'memflow[dashboard]' ({exc})")
        return
    try:
        settings = DashboardSettings(database_url=database_url or None, namespace=namespace,
                                     host=host, port=port, token=token or None)
        check_bind(host, settings.token)
    except ValueError as exc:
        fail(str(exc), code=2)
        return
    note(f"MemFlow dashboard on {login_url(settings)} (Ctrl-C to stop)")
    serve(settings)
