"""One running thread of a workflow (the main function, or a hook): its loop, counter, history.

Results reach the thread in numbered *deliveries*. Each delivery settles some pending durable
calls (in step order) and runs the thread until it is blocked again. The delivery number of each
result is stored with its step, so a replay on any worker feeds results back in the very same
batches and order, and parallel branches number their later calls exactly as they did live.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import random as _random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from memflow.commands import Command, PatchMarker
from memflow.engine.loop import WorkflowLoop
from memflow.engine.messaging import MessagePassing, ReadOnlyError, UpdateRequest, _current
from memflow.engine.settle import cancel_all, settle
from memflow.errors import NonDeterminismError, WorkflowInterruption
from memflow.store import Thread
from memflow.store.control import CANCEL_MARKER

__all__ = ["NonDeterminismError", "Pending", "ReadOnlyError", "ThreadRun", "UpdateRequest",
           "current_thread"]


def current_thread(what: str = "this call") -> ThreadRun:
    """The workflow thread running now; raises a clear error outside a workflow."""
    thread = _current.get()
    if thread is None:
        raise RuntimeError(f"{what} can only be used inside a workflow function "
                           "run by a MemFlow worker")
    return thread


@dataclass
class Pending:
    """A durable call waiting for its result."""

    future: asyncio.Future[Any]
    decode: Callable[[Any], Any] | None = None


@dataclass
class ThreadRun(MessagePassing):
    """The live state of one workflow thread on a worker."""

    ref: Thread
    name: str
    namespace: str
    args: list[Any]
    config: dict[str, Any]
    attempt: int
    history: dict[int, dict[str, Any]]
    loop: WorkflowLoop = field(default_factory=WorkflowLoop)
    counter: int = 0
    deliveries: int = 0
    pending: dict[int, Pending] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)
    undelivered: list[tuple[int, int]] = field(default_factory=list)
    task: asyncio.Task[Any] | None = None
    closing: bool = False
    version: int = 0  # the thread's committed passes, as the database counts them
    trace: Any = None  # the thread's trace state (memflow.observe.tracing), when traced
    pass_time: tuple[int, Any] | None = None  # (delivery, value) of workflow.now()
    clock: Any = None  # the engine clock (a datetime) when this pass's task was taken
    # the first divergence from the history found by this copy (the engine then commits
    # nothing of the pass, whatever the workflow code did with the error raised in it)
    nondeterminism: NonDeterminismError | None = None
    patches: dict[str, bool] = field(default_factory=dict)  # workflow.patched() answers
    # message passing: handlers the workflow registered, predicates of wait_condition
    query_handlers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    update_handlers: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = field(
        default_factory=dict)
    conditions: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = field(
        default_factory=list)
    inbox: bool = False  # update requests may wait for this (main) thread to admit them
    unhandled: set[str] = field(default_factory=set)  # requested names without a handler yet
    read_only: str | None = None  # set while read-only code runs: what it is
    cancel_reason: dict[str, Any] | None = None  # set when the cancel marker was delivered
    history_bytes: int = 0  # JSON size of the results delivered so far (see history_size)
    unsized: list[int] = field(default_factory=list)  # delivered steps not yet counted

    def __post_init__(self) -> None:
        seqs = [s["seq"] for s in self.history.values() if s.get("seq") is not None]
        self.replay_until = max(seqs, default=0)
        # A thread built over a recorded history re-runs its first pass (its commands are in the
        # history) and, after each recorded delivery, the code that delivery ran (its commands
        # were committed with the delivery's number): it replays until its first new delivery.
        self.rebuilt = any(i >= 0 for i in self.history)
        self.recorded_max = max(self.history, default=-1)
        self._reach_checked = not self.rebuilt
        self._rng = _random.Random(f"{self.ref.run_id}/{self.ref.dim}")
        # The cancel marker (memflow.store.control) is awaited from the start, like a call:
        # it is delivered in its own numbered delivery, live and on replay alike.
        self.pending[CANCEL_MARKER] = Pending(self.loop.create_future())

    @property
    def cancel_requested(self) -> bool:
        """True once the run's cancellation has reached this thread."""
        return self.cancel_reason is not None

    @property
    def replaying(self) -> bool:
        """True while the thread re-runs code whose durable calls its history already recorded."""
        return self.rebuilt and self.deliveries <= self.replay_until

    def start(self, main: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Create the thread's main task; it runs at the first ``run``."""
        ctx = contextvars.copy_context()
        ctx.run(_current.set, self)
        self.task = self.loop.create_task(main(), context=ctx)

    def run(self) -> None:
        """Run until blocked, then feed recorded deliveries (replay) until history is used up."""
        self._run_loop()
        while self.deliveries < self.replay_until and not self._done():
            seq = self.deliveries + 1
            batch = [i for i, s in self.history.items()
                     if s.get("seq") == seq and i in self.pending]
            admits = [i for i, s in self.history.items()
                      if s.get("seq") == seq and s["kind"] == "update"]
            self._deliver(sorted(batch), record=False, admits=sorted(admits))
        if not self._done():
            live = sorted(i for i, s in self.history.items() if i in self.pending
                          and s["status"] != "pending" and s.get("seq") is None)
            if live:
                self._deliver(live, record=True)
        if not self._reach_checked:
            self._reach_checked = True
            self._check_reached()

    def deliver(self, rows: list[dict[str, Any]]) -> None:
        """Settle pending calls with newly known step rows, as one live delivery."""
        idxs = []
        for row in rows:
            self.history[row["idx"]] = row
            if row["idx"] in self.pending and row["status"] != "pending":
                idxs.append(row["idx"])
        if idxs:
            self._deliver(sorted(idxs), record=True)

    def _deliver(self, idxs: list[int], record: bool, admits: list[int] | None = None) -> None:
        self.deliveries += 1
        for idx in admits or ():  # replayed admissions of updates, in their recorded order
            if not self._admit_recorded(idx):
                return
        self.unsized.extend(idxs)
        if len(self.unsized) > 4096:  # a long-lived thread: fold them in now and then
            self.history_size()
        cancelled = CANCEL_MARKER in idxs
        overtaken = []  # results that came with the cancel: the cancel wins
        for idx in idxs:
            pend = self.pending.pop(idx)
            if idx != CANCEL_MARKER:
                if cancelled:
                    overtaken.append(pend.future)
                else:
                    settle(pend.future, pend.decode, self.history[idx])
            if record:
                self.undelivered.append((idx, self.deliveries))
        if cancelled:
            # the run was cancelled: every call the thread still awaits raises CancelledError
            # (its results, should they come, are ignored); later calls run as usual
            reason = self.history[CANCEL_MARKER].get("result")
            self.cancel_reason = reason if isinstance(reason, dict) else {"message": reason}
            cancel_all(overtaken + [self.pending.pop(i).future for i in sorted(self.pending)]
                       + [fut for _pred, fut in self.conditions],  # and every wait_condition
                       self.cancel_reason.get("message"))
            self.conditions.clear()
        self._run_loop()

    def _done(self) -> bool:
        return self.task is not None and self.task.done()

    @property
    def done(self) -> bool:
        """True once the thread's function has returned or raised."""
        return self._done()

    def take_commands(self) -> tuple[list[Command], list[tuple[int, int]]]:
        """New commands and delivery marks not yet committed (and forget them)."""
        commands, self.commands = self.commands, []
        delivered, self.undelivered = self.undelivered, []
        return commands, delivered

    def next_slot(self, kind: str, name: str | None = None) -> tuple[int, dict[str, Any] | None]:
        """Take the next counter slot; returns it with its recorded step, if any."""
        if self.closing:
            raise WorkflowInterruption()
        if self.read_only is not None:
            raise ReadOnlyError(f"{self.read_only} called a durable API ({kind}); it may "
                                "only read the workflow's state")
        idx = self.counter
        rec = self.history.get(idx)
        while rec is not None and rec["kind"] == "patch":
            idx += 1  # the marker of a patch this code no longer asks about (it was removed)
            rec = self.history.get(idx)
        self.counter = idx + 1
        if rec is not None and (rec["kind"] != kind or (
                name is not None and rec.get("name") is not None and rec["name"] != name)):
            raise self._diverged(idx, rec, {"kind": kind, "name": name})
        return idx, rec

    def _diverged(self, idx: int, rec: dict[str, Any],
                  requested: dict[str, Any] | None) -> NonDeterminismError:
        """Record (the first) divergence from the history and return its error."""
        where = f"workflow {self.ref.workflow_id} (run {self.ref.run_id}" + (
            f", thread {self.ref.dim})" if self.ref.dim else ")")
        was = f"{rec['kind']} {rec.get('name')!r}" if rec.get("name") is not None else (
            rec["kind"])
        if requested is None:
            now = "the code no longer reaches it"
        else:
            now = "the code now calls " + (
                f"{requested['kind']} {requested['name']!r}" if requested.get("name")
                is not None else requested["kind"])
        err = NonDeterminismError(
            f"{where}: step {idx} was {was} in the history, but {now}; workflow code must be "
            "deterministic (change it with workflow.patched(), see docs/deploys.md)",
            step=idx, dimension=self.ref.dim,
            recorded={"kind": rec["kind"], "name": rec.get("name")}, requested=requested)
        if self.nondeterminism is None:
            self.nondeterminism = err
        return err

    def _check_reached(self) -> None:
        """After the replay of a rebuilt thread: every recorded step must have been reached
        (the markers of removed patches excepted)."""
        if self.nondeterminism is not None:
            return
        unreached = [i for i, s in self.history.items()
                     if i >= self.counter and s["kind"] != "patch"]
        if unreached:
            idx = min(unreached)
            self._diverged(idx, self.history[idx], None)

    def patch(self, patch_id: str) -> bool:
        """``workflow.patched(patch_id)``: True where new code first runs it (a marker is
        recorded in the next slot), on replay whether the marker was recorded here. An old
        history without the marker answers False without taking a slot, so the step numbers
        of what follows stay those recorded. The answer is kept for the rest of the run."""
        if self.closing:
            raise WorkflowInterruption()
        known = self.patches.get(patch_id)
        if known is not None:
            return known
        idx = self.counter
        rec = self.history.get(idx)
        if rec is not None:
            found = rec["kind"] == "patch" and rec.get("name") == patch_id
            if found:
                self.counter += 1
        elif idx <= self.recorded_max:
            found = False  # older code used this slot for an unrecorded call (random, guid)
        else:
            self.counter += 1
            self.commands.append(PatchMarker(idx, patch_id))
            found = True
        self.patches[patch_id] = found
        return found

    def call(self, command: Command,
             decode: Callable[[Any], Any] | None = None) -> asyncio.Future[Any]:
        """A durable call: a future settled from history, or by the new ``command``'s result.
        The command takes the next counter slot (its ``idx`` must be ``counter``)."""
        if command.idx != self.counter:
            raise RuntimeError(f"internal error: command {command.kind} has slot {command.idx}, "
                               f"but the next slot is {self.counter}")
        idx, rec = self.next_slot(command.kind, command.step_name)
        fut = self.loop.create_future()
        self.pending[idx] = Pending(fut, decode)
        if rec is None:
            if idx != command.idx:  # the slot moved past the marker of a removed patch
                command = dataclasses.replace(command, idx=idx)
            self.commands.append(command)
        return fut

    def history_size(self) -> int:
        """The JSON size in bytes of the results and errors delivered to the thread so far
        (counted when asked: the pass loop pays nothing for it)."""
        if self.unsized:
            for idx in self.unsized:
                row = self.history.get(idx) or {}
                value = row.get("error") if row.get("status") == "failed" else row.get("result")
                self.history_bytes += len(json.dumps(value, default=str)) + 64
            self.unsized.clear()
        return self.history_bytes

    def random(self) -> float:
        """A deterministic random number in [0, 1): the same on every replay."""
        self.next_slot("random")
        return self._rng.random()

    def close(self) -> None:
        """Stop the thread's coroutine; its durable calls raise from now on."""
        self.closing = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                self.loop.run_until_blocked()
            except Exception:  # pragma: no cover - user code failing while cancelled
                pass
        self.loop.close()
