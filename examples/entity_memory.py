"""Feature 1 — entity memory: each workflow has a durable JSON document, its *entity*.

Every entity call is one atomic, replay-safe update: kill the worker half-way and the next
worker replays the workflow without applying any update twice. The entity stays readable from
outside (``handle.entity()``) and searchable across workflows (``Entity.find``).

    python examples/entity_memory.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_entity``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from memflow import Client, Entity, MemFlow, Worker, guid, workflow

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_entity")


async def user_profile(user_id: str, name: str) -> Any:
    """Build a user's profile in the workflow's entity, one durable update at a time."""
    entity = await workflow.entity()
    await entity.set({"user_id": user_id, "name": name, "plan": "free",
                      "preferences": {"theme": "light"}, "tags": [], "logins": 0})
    await entity.merge({"preferences": {"language": "en"}})  # deep merge: theme stays
    await entity.append("tags", "beta-tester")
    await entity.increment("logins", 2)
    await entity.toggle("preferences.notifications")        # missing → True
    await entity.set_if_not_exists("plan", "enterprise")     # already set: stays "free"
    return await entity.get()


async def main() -> None:
    try:
        await Worker.create(task_queue="profiles", workflow=user_profile, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        user_id = f"user-{guid()}"
        handle = await client.workflow.start(args=[user_id, "Ada"], task_queue="profiles",
                                             workflow_name="user_profile",
                                             workflow_id=user_id, entity="user")
        profile = await handle.result(timeout=60)
        print("entity returned by the workflow:", json.dumps(profile, sort_keys=True))
        print("entity read from outside:       ",
              json.dumps(await handle.entity(), sort_keys=True))
        found = await Entity.find("user", {"user_id": user_id}, client)
        print("Entity.find('user', {user_id}):  ", [f["workflow_id"] for f in found])
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
