"""Offline replay: check that workflow code still replays recorded histories, with no database.

``handle.fetch_history()`` (or ``memflow history ID``) saves a run's history as a JSON document
(format ``"memflow-history/1"``); ``Replayer(workflows=[...]).replay(history)`` runs the given
code over it exactly as a worker rebuilding the run would, and raises ``NonDeterminismError`` at
the first divergence. Keep histories of real runs in the repository and replay them in CI
before deploying a change (see docs/deploys.md).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memflow.engine.thread import ThreadRun
from memflow.errors import NonDeterminismError
from memflow.handle import HISTORY_FORMAT
from memflow.store import Thread
from memflow.workflow.main import make_main


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of replaying one history: ``error`` is the divergence found (None when it
    replayed); ``threads`` the threads replayed (``""`` the main one), ``skipped`` the hook
    threads whose function was not given to the replayer."""

    workflow_id: str
    run_id: str
    workflow_name: str
    error: NonDeterminismError | None = None
    threads: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Replayer:
    """Replays histories against workflow functions (a function, a list, or a dict of
    name -> function, as for ``Worker.create``), in this process, with no database."""

    def __init__(self, workflows: Any, *, namespace: str | None = None):
        self.functions = _functions(workflows)
        self.namespace = namespace

    async def replay(self, history: dict[str, Any] | str | bytes) -> ReplayResult:
        """Replay one history (a ``fetch_history()`` document, or its JSON text); raises
        ``NonDeterminismError`` at the first divergence, ``ValueError`` for a document that
        is not a ``memflow-history/1`` or names a workflow the replayer was not given."""
        result = self._replay(_document(history))
        if result.error is not None:
            raise result.error
        return result

    async def replay_many(self, histories: Iterable[dict[str, Any] | str | bytes], *,
                          raise_on_failure: bool = True) -> list[ReplayResult]:
        """Replay several histories; with ``raise_on_failure`` (the default) the first
        divergence is raised, otherwise every result is returned with its ``error``."""
        results = []
        for history in histories:
            result = self._replay(_document(history))
            if result.error is not None and raise_on_failure:
                raise result.error
            results.append(result)
        return results

    def _replay(self, doc: dict[str, Any]) -> ReplayResult:
        name = doc["workflow_name"]
        if name not in self.functions:
            raise ValueError(f"history of {doc['workflow_id']!r} is of workflow {name!r}, which "
                             f"the replayer was not given (it has {sorted(self.functions)})")
        replayed, skipped = [""], []
        error = self._thread(doc, "", name, doc.get("args"), doc.get("status"),
                             int(doc.get("attempt") or 1))
        for t in doc.get("threads") or []:
            if error is not None:
                break
            if t["workflow_name"] not in self.functions:
                skipped.append(t["dimension"])
                continue
            replayed.append(t["dimension"])
            error = self._thread(doc, t["dimension"], t["workflow_name"], t.get("args"),
                                 t.get("status"), 1)
        return ReplayResult(doc["workflow_id"], doc["run_id"], name, error, replayed, skipped)

    def _thread(self, doc: dict[str, Any], dim: str, name: str, args: Any, status: Any,
                attempt: int) -> NonDeterminismError | None:
        steps = {s["index"]: {"idx": s["index"], "kind": s["kind"], "name": s.get("name"),
                              "status": s["status"], "result": s.get("result"),
                              "error": s.get("error"), "seq": s.get("seq")}
                 for s in doc.get("steps") or [] if (s.get("dimension") or "") == dim}
        thread = ThreadRun(
            ref=Thread(doc["workflow_id"], doc["run_id"], dim, doc.get("task_queue") or ""),
            name=name, namespace=self.namespace or doc.get("namespace") or "memflow",
            args=list(args or []), config=doc.get("config") or {}, attempt=attempt,
            history=steps)
        thread.version = 0
        thread.clock = _when(doc.get("completed_at") or doc.get("created_at"))
        thread.start(make_main(thread, self.functions[name]))
        try:
            thread.run()
            if thread.nondeterminism is not None:
                return thread.nondeterminism
            if status == "completed" and not thread.done:
                return _goes_on(thread, dim)
            return None
        finally:
            thread.close()


def _goes_on(thread: ThreadRun, dim: str) -> NonDeterminismError:
    """The history ends the thread, but the code now calls something more."""
    new = thread.commands[0] if thread.commands else None
    requested = None if new is None else {"kind": new.kind, "name": new.step_name}
    step = thread.counter - 1 if new is None else new.idx
    what = "waits" if new is None else (
        f"calls {new.kind} {new.step_name!r}" if new.step_name else f"calls {new.kind}")
    where = f"workflow {thread.ref.workflow_id} (run {thread.ref.run_id}" + (
        f", thread {dim})" if dim else ")")
    return NonDeterminismError(
        f"{where}: step {step}: the history ends the thread (completed) there, but the code "
        f"now {what}; workflow code must be deterministic", step=step, dimension=dim,
        recorded={"kind": "completed", "name": None}, requested=requested)


def _document(history: dict[str, Any] | str | bytes) -> dict[str, Any]:
    doc = json.loads(history) if isinstance(history, str | bytes) else history
    if not isinstance(doc, dict) or doc.get("format") != HISTORY_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"not a {HISTORY_FORMAT} document (format: {got!r})")
    for key in ("workflow_id", "run_id", "workflow_name"):
        if not isinstance(doc.get(key), str):
            raise ValueError(f"{HISTORY_FORMAT} document without {key!r}")
    return doc


def _when(text: Any) -> datetime:
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    return datetime.now(UTC)


def _functions(workflows: Any) -> dict[str, Callable[..., Any]]:
    if isinstance(workflows, dict):
        items = list(workflows.items())
    else:
        fns = workflows if isinstance(workflows, list | tuple) else [workflows]
        items = [(getattr(fn, "__name__", repr(fn)), fn) for fn in fns]
    out: dict[str, Callable[..., Any]] = {}
    for name, fn in items:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"workflow {fn!r} must be an `async def` function")
        out[name] = fn
        out.setdefault(fn.__name__, fn)
    if not out:
        raise ValueError("Replayer needs at least one workflow function")
    return out
