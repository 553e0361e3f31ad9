"""One namespace's view of the store: every statement, with the schema filled in."""

from __future__ import annotations

from typing import Any

from memflow.store.admin import AdminQueries
from memflow.store.base import Store, schema_sql, validate_namespace
from memflow.store.commands import client_hook, send_signal
from memflow.store.entity import EntityQueries
from memflow.store.observe import ObserveQueries
from memflow.store.passes import PassQueries
from memflow.store.poison import PoisonQueries
from memflow.store.schedules import ScheduleQueries
from memflow.store.search import SearchQueries
from memflow.store.sql_search import SqlSearchQueries
from memflow.store.tasks import TaskQueries
from memflow.store.workflows import WorkflowQueries


class NamespaceStore(WorkflowQueries, TaskQueries, PassQueries, AdminQueries, EntityQueries,
                     SearchQueries, SqlSearchQueries, ObserveQueries, PoisonQueries,
                     ScheduleQueries):
    """The statements of one namespace (schema) on a shared Store."""

    def __init__(self, store: Store, namespace: str):
        self.store = store
        self.namespace = validate_namespace(namespace)
        self._sql: dict[str, str] = {}

    @classmethod
    async def open(cls, store: Store, namespace: str) -> NamespaceStore:
        """The namespace's store, its tables created or upgraded first."""
        ns = cls(store, namespace)
        await store.migrate(ns.namespace)
        return ns

    def q(self, template: str) -> str:
        """``template`` with this namespace's schema in place of ``{s}`` (cached)."""
        sql = self._sql.get(template)
        if sql is None:
            sql = self._sql[template] = schema_sql(template, self.namespace)
        return sql

    async def signal(self, signal_id: str, data_json: str) -> int:
        """Send a signal from outside any workflow; returns how many waiters got it now."""
        statements = send_signal(signal_id, data_json, self.namespace)

        async def go(conn: Any) -> int:
            delivered = 0
            async with conn.transaction():
                for sql, params in statements:
                    cur = await conn.execute(self.q(sql), params)
                    if cur.description:
                        row = await cur.fetchone()
                        if row and len(row) == 3:
                            delivered = int(row[0])
            return delivered
        return int(await self.store.run(go, retry_for=0))

    async def hook(self, params: dict[str, Any]) -> str | None:
        """Start a hook thread on a workflow from outside; None when it accepts no hooks."""
        sql, full = client_hook(params, self.namespace)
        rows = await self.store.fetch(self.q(sql), full)
        return str(rows[0]["dim"]) if rows else None

    async def events_since(self, topic: str, after_id: int) -> list[dict[str, Any]]:
        """Events of ``topic`` newer than ``after_id``, oldest first."""
        return list(await self.store.fetch(self.q(
            "SELECT id, topic, message, created_at FROM {s}.events "
            "WHERE topic = %(topic)s AND id > %(after)s ORDER BY id"),
            {"topic": topic, "after": after_id}))

    async def last_event_id(self) -> int:
        """The newest event id (0 when there is none)."""
        rows = await self.store.fetch(self.q("SELECT coalesce(max(id), 0) AS id FROM {s}.events"))
        return int(rows[0]["id"])
