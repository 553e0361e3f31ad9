"""The embedded PostgreSQL used when no database is configured (``pgserver`` under MEMFLOW_HOME).

``pgserver`` comes with the ``memflow[embedded]`` extra.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

MISSING = ("no database configured, and the embedded Postgres is not installed: "
           "pip install 'memflow[embedded]', or set MEMFLOW_DATABASE_URL (or pass a DSN)")

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
                except ImportError as exc:
                    raise RuntimeError(MISSING) from exc
                data.mkdir(parents=True, exist_ok=True)
                server = pgserver.get_server(data, cleanup_mode=None)
            _servers[key] = server
        uri: str = server.get_uri()
        return uri
