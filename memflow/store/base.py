"""The one gate to Postgres: a pooled, self-reconnecting store shared per DSN in a process."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from memflow.payload import loads
from memflow.store.notify import Notifier
from memflow.store.schema import MIGRATIONS

log = logging.getLogger("memflow.store")
# psycopg decodes JSON/JSONB columns with memflow's fast, depth-safe decoder.
set_json_loads(loads)
T = TypeVar("T")

NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CONNECT_TIMEOUT = 10.0
RECONNECT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


def validate_namespace(namespace: Any) -> str:
    """Return ``namespace`` if it is a safe schema name, else raise ``ValueError``."""
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace):
        raise ValueError(f"invalid namespace {namespace!r}: it must match [a-z][a-z0-9_]{{0,62}}")
    if namespace.startswith("pg_") or namespace == "information_schema":
        raise ValueError(f"invalid namespace {namespace!r}: reserved by PostgreSQL")
    return namespace


class Store:
    """Connection pool, migrations and notifications for one DSN."""

    _instances: dict[tuple[str, int], Store] = {}

    def __init__(self, dsn: str, role: str):
        self.dsn = dsn
        self.role = role
        self.pool = AsyncConnectionPool(
            dsn, min_size=1, max_size=12, open=False, name=f"memflow-{role}",
            kwargs={"autocommit": True, "application_name": f"memflow-{role}"},
            reconnect_timeout=0,
        )
        self.notifier = Notifier(dsn)
        self._migrated: set[str] = set()
        self._migrate_lock = asyncio.Lock()
        self._opened = False
        self._open_lock = asyncio.Lock()
        self.closed = False

    @classmethod
    async def get(cls, dsn: str, role: str = "client") -> Store:
        """The shared store of this DSN for the running event loop, opened on first use."""
        key = (dsn, id(asyncio.get_running_loop()))
        store = cls._instances.get(key)
        if store is None or store.closed:
            store = cls(dsn, role)
            cls._instances[key] = store
        await store.open()
        return store

    @classmethod
    async def close_all(cls) -> None:
        """Close every store of the running event loop."""
        loop_id = id(asyncio.get_running_loop())
        for key, store in list(cls._instances.items()):
            if key[1] == loop_id:
                await store.close()
                del cls._instances[key]

    async def open(self) -> None:
        """Open the pool and the notification listener (idempotent)."""
        async with self._open_lock:
            if self._opened:
                return
            try:
                await self.pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            except Exception as exc:
                await self.pool.close()
                self.closed = True
                raise ConnectionError(
                    f"cannot connect to PostgreSQL ({_redact(self.dsn)}): {exc}") from None
            await self.notifier.start()
            self._opened = True

    async def close(self) -> None:
        """Close the pool and the listener."""
        self.closed = True
        await self.notifier.stop()
        await self.pool.close()

    async def run(self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
                  *, retry_for: float = 3600.0) -> T:
        """Run ``fn(conn)`` on a pooled connection, retrying through lost connections (for
        up to ``retry_for`` seconds) and through deadlocks and serialization failures (a few
        times, whatever ``retry_for`` says: the transaction was rolled back whole).

        ``fn`` must be safe to run again: every write in the store is idempotent by key.
        """
        delay = 0.05
        waited = 0.0
        attempt = 0
        conflicts = 0
        while True:
            try:
                async with self.pool.connection() as conn:
                    try:
                        return await fn(conn)
                    except RECONNECT_ERRORS as exc:
                        if getattr(exc, "sqlstate", None) not in _CONFLICTS:
                            await conn.close()  # never hand a connection in doubt back
                        raise
            except RECONNECT_ERRORS as exc:
                if getattr(exc, "sqlstate", None) in _CONFLICTS:
                    conflicts += 1
                    if self.closed or conflicts > 8:
                        raise
                    await asyncio.sleep(random.uniform(0.0, 0.01 * conflicts))
                    continue
                if self.closed or waited >= retry_for or not _transient(exc, attempt):
                    raise
                attempt += 1
                log.warning("database connection lost (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)
                await self.pool.check()

    async def fetch(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        """Rows of one statement, as dicts."""
        async def go(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, params)
                return await cur.fetchall() if cur.description else []
        return await self.run(go)

    async def migrate(self, namespace: str) -> None:
        """Create or upgrade the tables of ``namespace`` (safe from many processes at once)."""
        validate_namespace(namespace)
        if namespace in self._migrated:
            return
        async with self._migrate_lock:
            if namespace in self._migrated:
                return
            await self.run(lambda conn: _migrate(conn, namespace))
            self._migrated.add(namespace)


def schema_sql(template: str, namespace: str) -> str:
    """``template`` with ``{s}`` replaced by the quoted schema of an already validated namespace."""
    return template.replace("{s}", f'"{namespace}"')


async def _migrate(conn: psycopg.AsyncConnection[Any], namespace: str) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('memflow-migrate'), "
                           "hashtext(%s))", (namespace,))
        await conn.execute(schema_sql("CREATE SCHEMA IF NOT EXISTS {s}", namespace))
        await conn.execute(schema_sql(
            "CREATE TABLE IF NOT EXISTS {s}.migrations (version int PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())", namespace))
        cur = await conn.execute(schema_sql("SELECT version FROM {s}.migrations", namespace))
        applied = {row[0] for row in await cur.fetchall()}
        for version, ddl in MIGRATIONS:
            if version not in applied:  # every missing version, even below the newest
                await conn.execute(schema_sql(ddl, namespace))
                await conn.execute(schema_sql("INSERT INTO {s}.migrations (version) VALUES (%s)",
                                              namespace), (version,))


def _redact(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return dsn


_ADMIN_SHUTDOWN = {"57P01", "57P02", "57P03"}
_CONFLICTS = {"40P01", "40001"}  # deadlock detected, serialization failure


def _transient(exc: Exception, attempt: int) -> bool:
    """Whether an error is the connection's (worth retrying on a new one), not the statement's.

    A protocol violation (08P01) is usually a connection left in a bad state by a dropped
    link, but could be a bug: it is retried a few times only.
    """
    state = getattr(exc, "sqlstate", None)
    if state is None or state in _ADMIN_SHUTDOWN:
        return True
    if state == "08P01":
        return attempt < 3
    return state.startswith("08")
