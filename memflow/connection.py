"""Connections: the forms of ``connection=`` users may pass, resolved to one shared Store."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from memflow.store import Store
from memflow.store.base import _redact


class Postgres:
    """Marker class for the seed's ``{"class": Postgres, "options": {...}}`` connection form."""


class Connection:
    """A resolved database connection, shared by every client and worker that uses it."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    @classmethod
    async def connect(cls, connection: Any = None) -> Connection:
        """Resolve any accepted connection form (DSN, seed dict, Connection, None)."""
        if isinstance(connection, Connection):
            return connection
        return cls(await resolve_dsn(connection))

    async def store(self, role: str = "client") -> Store:
        """The process-wide store (connection pool) for this DSN."""
        return await Store.get(self.dsn, role)

    def __repr__(self) -> str:
        return f"Connection({_redact(self.dsn)!r})"


async def resolve_dsn(connection: Any) -> str:
    """The DSN named by ``connection``; ``None`` means MEMFLOW_DATABASE_URL or embedded Postgres."""
    if isinstance(connection, Connection):
        return connection.dsn
    if isinstance(connection, str):
        if not connection.strip():
            raise ValueError("connection: the DSN is empty")
        return connection
    if isinstance(connection, dict):
        options = connection.get("options", connection)
        if not isinstance(options, dict):
            raise TypeError("connection['options'] must be a dict")
        dsn = options.get("connection_string") or options.get("conninfo")
        if dsn is None:
            if "options" in connection and not options:
                return await resolve_dsn(None)
            raise ValueError("connection: give options.connection_string (or conninfo)")
        return await resolve_dsn(dsn)
    if connection is None:
        env = os.environ.get("MEMFLOW_DATABASE_URL")
        if env:
            return env
        from memflow.embedded import embedded_dsn

        return await asyncio.to_thread(embedded_dsn)
    raise TypeError("connection must be a DSN string, a {'class', 'options'} dict, "
                    f"a Connection or None, not {type(connection).__name__}")
