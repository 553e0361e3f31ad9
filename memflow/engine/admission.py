"""Admission of update requests into a workflow's main thread, at the start of a pass."""

from __future__ import annotations

from memflow import payload
from memflow.engine.outcomes import error_json
from memflow.engine.thread import ThreadRun, UpdateRequest
from memflow.errors import UpdateRejectedError
from memflow.store import NamespaceStore


async def admit_updates(ns: NamespaceStore, thread: ThreadRun) -> None:
    """Admit the update requests waiting for this main thread, in order of arrival: each
    one whose handler is registered is validated against the state as it is now (a
    validator's refusal is told to the caller and records nothing) and then admitted as
    a delivery of its own, its handler running at once. Requests without a handler yet
    wait for the pass that registers it."""
    thread.inbox = False
    for row in await ns.updates.requested(thread.ref.run_id):
        name, update_id, args = row["name"], row["update_id"], list(row["args"] or [])
        entry = thread.update_handlers.get(name)
        if entry is None:
            thread.unhandled.add(name)
            continue
        validator = entry[1]
        if validator is not None:
            try:
                thread.read(validator, payload.decode_args(validator, args),
                            f"the validator of update {name!r}")
            except Exception as exc:
                err = UpdateRejectedError(str(exc) or type(exc).__name__)
                await ns.updates.reject(thread.ref.run_id, update_id, error_json(err))
                continue
        thread.unhandled.discard(name)
        thread.admit([UpdateRequest(update_id, name, args)])
        if thread.done:
            return
