"""Messages from outside a workflow: signals, hook threads started by a client, and events."""

from __future__ import annotations

from typing import Any

from memflow.store.commands import client_hook, send_signal
from memflow.store.scope import Part


class MessageQueries(Part):
    """Signals and hooks sent from a client, and the events workflows emit."""

    async def signal(self, signal_id: str, data_json: str) -> int:
        """Send a signal from outside any workflow; returns how many waiters got it now."""
        statements = send_signal(signal_id, data_json, self.namespace)

        async def go(conn: Any) -> int:
            delivered = 0
            async with conn.transaction():
                for sql, params in statements:
                    cur = await conn.execute(self.sql(sql), params)
                    if cur.description:
                        row = await cur.fetchone()
                        if row and len(row) == 3:
                            delivered = int(row[0])
            return delivered
        return int(await self.store.run(go, retry_for=0))

    async def hook(self, params: dict[str, Any]) -> str | None:
        """Start a hook thread on a workflow from outside; None when it accepts no hooks."""
        sql, full = client_hook(params, self.namespace)
        rows = await self.store.fetch(self.sql(sql), full)
        return str(rows[0]["dim"]) if rows else None

    async def events_since(self, topic: str, after_id: int) -> list[dict[str, Any]]:
        """Events of ``topic`` newer than ``after_id``, oldest first."""
        return list(await self.store.fetch(self.sql(
            "SELECT id, topic, message, created_at FROM {s}.events "
            "WHERE topic = %(topic)s AND id > %(after)s ORDER BY id"),
            {"topic": topic, "after": after_id}))

    async def last_event_id(self) -> int:
        """The newest event id (0 when there is none)."""
        rows = await self.store.fetch(self.sql("SELECT coalesce(max(id), 0) AS id FROM {s}.events"))
        return int(rows[0]["id"])
