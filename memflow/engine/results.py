"""Recording step results in batches: the results a worker produces in one event-loop tick
(activities finishing, timers firing) are committed by one statement, not one each."""

from __future__ import annotations

import asyncio
from typing import Any

from memflow import payload
from memflow.store import NamespaceStore, Task

# A pass task created leased to this worker: the task, the step rows to deliver, and the
# thread's version when the results were recorded.
Held = tuple[Task, list[dict[str, Any]], int]


class ResultBatcher:
    """Gathers ``record`` calls made in the same tick and commits them together."""

    def __init__(self, ns: NamespaceStore, owner: str, lease: float):
        self.ns = ns
        self.owner = owner
        self.lease = lease
        self._batch: list[tuple[Task, str, str | None, str | None, bool,
                                asyncio.Future[Held | None]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def record(self, task: Task, status: str, result_json: str | None,
                     error_json: str | None, hold: bool) -> Held | None:
        """Commit a step result (durably, before this returns) and wake its thread.

        With ``hold``, when the thread had no pending pass, the new pass task is created leased
        to this worker and returned with the step rows it must deliver and the thread's
        version (to one caller only). A result whose task this worker no longer holds is
        ignored by the database (returns None)."""
        fut: asyncio.Future[Held | None] = asyncio.get_running_loop().create_future()
        self._batch.append((task, status, result_json, error_json, hold, fut))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._flush_soon)
        return await fut

    def _flush_soon(self) -> None:
        batch, self._batch = self._batch, []
        flush = asyncio.ensure_future(self._flush(batch))
        self._flushing.add(flush)
        flush.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: list[Any]) -> None:
        try:
            rows = await self.ns.tasks.complete_steps([b[:5] for b in batch], self.owner,
                                                      self.lease)
        except BaseException as exc:
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        woken = {(r["run_id"], r["dim"]): r for r in rows}
        by_step = {(b[0].run_id, b[0].dim, b[0].idx): b for b in batch}
        given: set[tuple[str, str]] = set()
        for task, _status, _result, _error, _hold, fut in batch:
            key = (task.run_id, task.dim)
            row = woken.get(key)
            held: Held | None = None
            if row is not None and row["held"] and key not in given:
                given.add(key)
                known = []
                for idx in row["idxs"] or []:
                    item = by_step[(task.run_id, task.dim, idx)]
                    known.append({"idx": idx, "status": item[1], "kind": None,
                                  "result": payload.loads(item[2]),
                                  "error": payload.loads(item[3])})
                held = (Task(id=int(row["id"]), queue=row["queue"], kind="w",
                             run_id=task.run_id, dim=task.dim, idx=None, payload=None,
                             attempts=1, wake=int(row["wake"]), now=row["now"]), known,
                        int(row["version"]))
            if not fut.done():
                fut.set_result(held)
