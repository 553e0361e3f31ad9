"""The embedded PostgreSQL used when no database is configured (``pgserver`` under MEMFLOW_HOME)."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_servers: dict[str, Any] = {}


def memflow_home() -> Path:
    """The folder MemFlow keeps its embedded database in (``MEMFLOW_HOME``, ``~/.memflow``)."""
    return Path(os.environ.get("MEMFLOW_HOME") or Path.home() / ".memflow")


def embedded_dsn() -> str:
    """Start (or reuse) the embedded Postgres and return its DSN. Blocking; call in a thread."""
    data = memflow_home() / "pgdata"
    key = str(data)
    with _lock:
        server = _servers.get(key)
        if server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    import pgserver
                except ImportError as exc:  # pragma: no cover - pgserver is a dependency
                    raise RuntimeError("the embedded Postgres needs the 'pgserver' package; "
                                       "or set MEMFLOW_DATABASE_URL") from exc
                data.mkdir(parents=True, exist_ok=True)
                server = pgserver.get_server(data, cleanup_mode=None)
            _servers[key] = server
        uri: str = server.get_uri()
        return uri
