"""How a dashboard is served: database, default namespace, address and access token."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

TOKEN_ENV = "MEMFLOW_DASHBOARD_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8233
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{8,512}$")


@dataclass(frozen=True)
class DashboardSettings:
    """The options of ``memflow dashboard``; ``token=None`` serves without a token."""

    database_url: str | None = None
    namespace: str = "memflow"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be an int between 0 and 65535, not {self.port!r}")
        if self.token is not None and (not isinstance(self.token, str)
                                       or not TOKEN_RE.match(self.token)):
            raise ValueError("the dashboard token must be 8 to 512 characters among letters, "
                             "digits and ._~+/=- (e.g. the output of 'openssl rand -hex 16')")


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    """The token given, else ``$MEMFLOW_DASHBOARD_TOKEN``, else None."""
    if token:
        return token
    return os.environ.get(TOKEN_ENV) or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse (``ValueError``) to serve on a non-loopback interface without a token."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"refusing to serve the dashboard on {host!r} without a token: anyone who can "
            f"reach it could stop workflows. Give --token (or ${TOKEN_ENV}), or bind to "
            "127.0.0.1")
