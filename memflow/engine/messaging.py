"""Message passing inside a workflow thread: update handlers admitted in deliveries, read-only
code (query handlers, validators, ``wait_condition`` predicates), and the predicates
re-evaluated after every delivery. ``ThreadRun`` (``memflow.engine.thread``) mixes this in."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from memflow import payload
from memflow.commands import AcceptUpdate, Command, FinishUpdate
from memflow.errors import NonDeterminismError, UpdateFailedError, error_to_dict

if TYPE_CHECKING:
    from memflow.engine.loop import WorkflowLoop
    from memflow.engine.thread import ThreadRun

# The workflow thread whose code runs now (set in the thread's tasks and around read-only code).
_current: contextvars.ContextVar[ThreadRun | None] = contextvars.ContextVar(
    "memflow_thread", default=None)


class ReadOnlyError(RuntimeError):
    """Code that may only read the workflow's state (a query handler, an update validator, a
    ``wait_condition`` predicate) called a durable API."""


@dataclass(frozen=True)
class UpdateRequest:
    """An update to admit into a main thread: its id, handler name and arguments."""

    update_id: str
    name: str
    args: list[Any]


class MessagePassing:
    """The message-passing half of a workflow thread (its state is declared by ``ThreadRun``)."""

    if TYPE_CHECKING:
        loop: WorkflowLoop
        history: dict[int, dict[str, Any]]
        counter: int
        deliveries: int
        commands: list[Command]
        closing: bool
        update_handlers: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]]
        conditions: list[tuple[Callable[[], Any], asyncio.Future[Any]]]
        read_only: str | None
        nondeterminism: NonDeterminismError | None

        def next_slot(self, kind: str,
                      name: str | None = None) -> tuple[int, dict[str, Any] | None]: ...

        def _diverged(self, idx: int, rec: dict[str, Any],
                      requested: dict[str, Any] | None) -> NonDeterminismError: ...

    def _admit_recorded(self, idx: int) -> bool:
        """Replay the admission of the update recorded at step ``idx``; False (the divergence
        recorded, the pass to fail) when the code has no handler for it or is elsewhere."""
        rec = self.history[idx]
        if rec.get("name") not in self.update_handlers or self.counter != idx:
            self._diverged(idx, rec, {"kind": "update", "name": None})
            return False
        self.next_slot("update", rec.get("name"))
        doc = rec.get("result") or {}
        self._start_update(str(doc.get("update_id")), str(rec.get("name")),
                           list(doc.get("args") or []))
        return True

    def _run_loop(self) -> None:
        """Run until blocked; then, while some ``wait_condition`` predicate became true,
        release its waiter and run again."""
        self.loop.run_until_blocked()
        while self.conditions and self.nondeterminism is None:
            fired = False
            for cond in list(self.conditions):
                pred, fut = cond
                if fut.done():
                    self.conditions.remove(cond)
                    continue
                try:
                    ok = self.read(pred, (), "a wait_condition predicate")
                except Exception as exc:
                    ok, fired = True, True
                    fut.set_exception(exc)
                if ok:
                    self.conditions.remove(cond)
                    if not fut.done():
                        fut.set_result(True)
                    fired = True
            if not fired:
                return
            self.loop.run_until_blocked()

    def read(self, fn: Callable[..., Any], args: Any, what: str) -> Any:
        """Call ``fn(*args)`` as read-only code of this thread (a query handler, an update
        validator, a predicate): a durable call inside raises ``ReadOnlyError``."""
        outer = self.read_only
        self.read_only = what
        token = _current.set(cast("ThreadRun", self))
        try:
            out = fn(*args)
            if inspect.isawaitable(out):
                if inspect.iscoroutine(out):
                    out.close()
                raise ReadOnlyError(f"{what} must be a plain function (def), not async")
            return out
        finally:
            _current.reset(token)
            self.read_only = outer

    def admit(self, updates: list[UpdateRequest]) -> None:
        """Admit accepted updates as one live delivery: each takes the next step slot, in
        order, and its handler starts; the steps record the delivery, so a replay admits them
        at the very same point."""
        self.deliveries += 1
        for u in updates:
            idx, _ = self.next_slot("update", u.name)
            args_json = payload.dumps(u.args, f"arguments of update {u.name!r}")
            self.history[idx] = {"idx": idx, "kind": "update", "name": u.name, "status": "done",
                                 "result": {"update_id": u.update_id, "args": u.args},
                                 "error": None, "seq": self.deliveries}
            self.commands.append(AcceptUpdate(idx, u.update_id, u.name, args_json,
                                              self.deliveries))
            self._start_update(u.update_id, u.name, u.args)
        self._run_loop()

    def _start_update(self, update_id: str, name: str, args: list[Any]) -> None:
        fn = self.update_handlers[name][0]
        ctx = contextvars.copy_context()
        ctx.run(_current.set, cast("ThreadRun", self))
        self.loop.create_task(self._run_update(update_id, name, fn, args), context=ctx)

    async def _run_update(self, update_id: str, name: str, fn: Callable[..., Any],
                          args: list[Any]) -> None:
        """Run an update's handler, then record its outcome as the thread's next step (a
        divergence from the history inside it fails the pass, not the update)."""
        status: Any = "done"
        result_json = error_json = None
        try:
            out = fn(*payload.decode_args(fn, args))
            if inspect.isawaitable(out):
                out = await out
            result_json = payload.dumps(out, f"result of update {name!r}")
        except asyncio.CancelledError:  # the run was cancelled while it ran
            if self.closing:
                raise
            status, error_json = "failed", payload.dumps(error_to_dict(
                UpdateFailedError(f"update {name!r} was cancelled with its run")), "error")
        except Exception as exc:
            if self.nondeterminism is not None:
                return
            status, error_json = "failed", payload.dumps(error_to_dict(exc), "error")
        idx, rec = self.next_slot("update_done", name)
        if rec is None:
            self.commands.append(FinishUpdate(idx, update_id, name, status, result_json,
                                              error_json))
