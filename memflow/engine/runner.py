"""Workflow passes: resume (or rebuild) a thread, run it until blocked, commit, repeat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from memflow import observe, payload
from memflow.commands import Command, ContinueAsNew, LocalLease
from memflow.engine.admission import admit_updates
from memflow.engine.cache import ThreadCache
from memflow.engine.keylocks import KeyLocks
from memflow.engine.local import lease_local
from memflow.engine.outcomes import (
    cancelled_by_workflow_code,
    cancelled_finish,
    error_json,
    immediate_row,
    workflow_policy,
)
from memflow.engine.results import ResultBatcher
from memflow.engine.thread import ThreadRun
from memflow.errors import (
    NON_RETRYABLE,
    ContinueAsNewError,
    MemFlowCancelledError,
    MemFlowError,
    MemFlowFatalError,
    MemFlowMaxedError,
    WorkflowInterruption,
    error_to_dict,
)
from memflow.ids import guid
from memflow.store import NamespaceStore, Task, Thread
from memflow.store.passes import Lease, PassOutcome, thread_open

log = logging.getLogger("memflow.worker")

# Refusals after which the pass goes on from the database: "stale" (another pass advanced
# the thread), "not live" (the run ended meanwhile, or a racing cancel or timeout changed it:
# the rebuild says which; an ended thread's task is then deleted).
_REBUILT = ("stale", "not live")
STALE_RETRIES = 5  # replays of a pass refused as stale before its task is given back
# A pass whose replay diverges from the history is retried with backoff (the worker's
# failure_backoff_seconds, doubled each time, at most a minute) and never parked: a rollback
# of the deploy lets the run go on.
DIVERGED_CAP, DIVERGED_BOUND = 60.0, 2**31 - 1
ON_NONDETERMINISM = ("retry", "fail")

# Builds the coroutine that runs a thread's function (interceptors wrap it); set by the
# workflow package so the engine does not import user-facing modules.
MainFactory = Callable[[ThreadRun, Callable[..., Any]], Callable[[], Any]]


class UnknownWorkflowError(LookupError):
    """A pass arrived for a workflow function this worker does not have."""


class PassRunner:
    """Runs the workflow passes of one worker.

    ``spawn`` runs a task this worker leased to itself (an activity the pass just scheduled
    on a queue this worker serves); ``owner`` and ``lease`` are the worker's lease identity.
    """

    def __init__(self, ns: NamespaceStore, functions: dict[str, Callable[..., Any]],
                 cache: ThreadCache, make_main: MainFactory, *, owner: str = "",
                 lease: float = 30.0, local_queues: frozenset[str] = frozenset(),
                 spawn: Callable[[Task], None] | None = None,
                 reserve: Callable[[int, int], int] | None = None,
                 unreserve: Callable[[int], None] | None = None,
                 on_nondeterminism: str = "retry", failure_backoff: float = 1.0):
        if on_nondeterminism not in ON_NONDETERMINISM:
            raise ValueError(f"on_nondeterminism must be one of {ON_NONDETERMINISM}, "
                             f"not {on_nondeterminism!r}")
        self.on_nondeterminism = on_nondeterminism
        self.failure_backoff = failure_backoff
        self.ns = ns
        self.functions = functions
        self.cache = cache
        self.make_main = make_main
        self.owner = owner
        self.lease = lease
        self.local_queues = local_queues
        self.spawn = spawn
        self.reserve = reserve
        self.unreserve = unreserve
        self.results = ResultBatcher(ns, owner, lease)
        self.leases: set[int] = set()  # held pass tasks, whose leases the consumer extends
        self._locks = KeyLocks()  # one pass at a time per thread in this worker

    async def _locked(self, key: tuple[str, str], work: Callable[[], Any]) -> Any:
        return await self._locks.run(key, work)

    async def run(self, task: Task) -> None:
        """Handle one claimed pass task to the end (the task is deleted or re-released)."""
        await self._locked((task.run_id, task.dim), lambda: self._run(task))

    async def settle_local(self, task: Task, status: str, result_json: str | None,
                           error_json: str | None) -> None:
        """Record a step result this worker produced (committed first, so it is never lost),
        and when the step's thread is blocked in this worker's cache, take its pass task in
        the same statement and resume the thread here at once (no NOTIFY, no claim, no
        re-read of the history) if it is still current. Results produced in the same tick
        share one statement."""
        key = (task.run_id, task.dim)
        hold = key in self.cache and task.idx is not None
        held = await self.results.record(task, status, result_json, error_json, hold)
        if held is not None:
            pass_task, known, version = held
            self.leases.add(pass_task.id)
            try:
                await self._locked(key, lambda: self._run(pass_task, known, version))
            finally:
                self.leases.discard(pass_task.id)

    async def _run(self, task: Task, known: list[dict[str, Any]] | None = None,
                   version: int | None = None) -> None:
        thread = self.cache.take((task.run_id, task.dim)) if known else None
        if thread is not None:
            thread.clock = task.now  # before the delivery below runs workflow code
        if thread is not None and version is not None and thread.version < version:
            thread.close()  # another worker advanced the run since this copy was cached
            thread = None
        if (thread is not None and known and thread.version == version
                and all(r["idx"] in thread.pending for r in known)):
            thread.deliver(known)  # current, and no other result arrived meanwhile
        else:
            # an older version: the result statement read it before this worker's own last
            # commit of the thread, so the copy may well be current; _resume checks it
            if thread is not None:
                self.cache.put(thread)
            thread = await self._resume(task)
        if thread is None:
            await self.ns.tasks.delete_task(task, self.owner)
            return
        try:
            async with observe.workflow_pass(self.ns, thread, task):
                await self._drive(thread, task)
        except BaseException:
            thread.close()
            raise

    async def _drive(self, thread: ThreadRun, task: Task) -> None:
        """Run the thread until blocked and commit, until it has nothing left to do now.

        Every commit is fenced by the task's lease and the thread's version. A commit refused
        as stale (another worker advanced the thread) or not live drops this copy and replays
        the thread from the database (a thread that has ended has its task deleted); one
        refused because the lease was lost ends the pass with no effect."""
        lease = Lease(task.id, self.owner, task.attempts)
        wake = task.wake
        stale = 0
        while True:
            thread.clock = task.now
            thread.run()
            if thread.nondeterminism is not None:
                await self._diverged(thread, task, lease)
                return
            if thread.inbox and thread.ref.dim == "" and not thread.done:
                await admit_updates(self.ns, thread)
                if thread.nondeterminism is not None:
                    await self._diverged(thread, task, lease)
                    return
            if task.failures:  # an earlier handling failed; this one got through
                task.failures = 0
                await self.ns.poison.clear_failures(task, self.owner)
            if thread.done:
                outcome = await self._finish(thread, task, lease)
                if outcome is None or outcome.refused not in _REBUILT:
                    thread.close()
                    return
            else:
                commands, delivered = thread.take_commands()
                immediate = any(c.immediate for c in commands)
                commands, promised = self._lease_local(commands)
                try:
                    outcome = await self.ns.passes.commit_pass(
                        thread.ref, commands, delivered, lease=lease, version=thread.version,
                        finalize=None if immediate else wake)
                    if outcome.refused is None:
                        self._start_local(outcome.local)
                finally:
                    if promised > 1 and self.unreserve is not None:
                        self.unreserve(promised - 1)  # the handed-over slot was not reserved
                if outcome.refused is None:
                    assert outcome.version is not None
                    thread.version = outcome.version
                    if immediate:
                        await self._deliver_immediate(thread, commands, outcome)
                        continue
                    if outcome.wake is None:
                        self.cache.put(thread)
                        return
                    wake = outcome.wake
                    refreshed = await self._refresh(thread)
                    if refreshed is not None:
                        thread = refreshed
                        continue
                elif outcome.refused not in _REBUILT:
                    log.debug("pass of %s/%r not applied: %s", thread.ref.run_id,
                              thread.ref.dim, outcome.refused)
                    thread.close()
                    return
            thread.close()
            stale += 1
            if stale > STALE_RETRIES:
                await self.ns.tasks.release(task, self.owner, 1.0)
                return
            rebuilt = await self._rebuild_run(thread.ref.run_id, thread.ref.dim)
            if rebuilt is None:
                await self.ns.tasks.delete_task(task, self.owner)
                return
            thread = rebuilt

    async def _diverged(self, thread: ThreadRun, task: Task, lease: Lease) -> None:
        """A replay that does not match the history: commit nothing of the pass. By default
        the pass fails (its task comes back with backoff, the error kept on it for
        ``describe()``) and the run stays running; with ``on_nondeterminism="fail"`` the
        workflow fails with the error."""
        err = thread.nondeterminism
        assert err is not None
        thread.take_commands()
        thread.close()
        if self.on_nondeterminism == "fail":
            finish = ("failed", None, error_json(err))
            outcome = await self.ns.passes.commit_pass(thread.ref, [], [], finish=finish,
                                                       lease=lease, version=thread.version)
            observe.workflow_finished(thread, finish, outcome)
            return
        failures, _ = await self.ns.poison.fail_task(
            task, self.owner, error_json(err), DIVERGED_BOUND, max(self.failure_backoff, 0.1),
            DIVERGED_CAP)
        log.warning("pass of workflow %s does not replay its history (failure %d; retried "
                    "with backoff): %s", thread.ref.workflow_id, failures, err)

    async def _deliver_immediate(self, thread: ThreadRun, commands: list[Command],
                                 outcome: PassOutcome) -> None:
        rows = [immediate_row(i, r) for i, r in sorted(outcome.results.items())]
        missing = [c.idx for c in commands if c.immediate and c.idx not in outcome.results]
        if missing:  # recorded by an earlier pass: read what it recorded
            _, found, _ = await self.ns.passes.load_steps(thread.ref.run_id, thread.ref.dim,
                                                          missing, 1 << 30)
            rows += found
        thread.deliver(rows)

    def _lease_local(self, commands: list[Command]) -> tuple[list[Command], int]:
        """``engine.local.lease_local`` for this worker (nothing leased without ``spawn``)."""
        if not self.spawn:
            return commands, 0
        return lease_local(commands, self.local_queues, LocalLease(self.owner, self.lease),
                           self.reserve)

    def _start_local(self, tasks: list[Task]) -> None:
        if self.spawn is not None:
            for t in tasks:
                self.spawn(t)

    async def _resume(self, task: Task) -> ThreadRun | None:
        cached = self.cache.take((task.run_id, task.dim))
        if cached is not None:
            cached.clock = task.now
            refreshed = await self._refresh(cached)
            if refreshed is not None:
                return refreshed
            cached.close()
        start = (task.payload or {}).get("start") if task.attempts == 1 else None
        if start is not None:
            # the first claim of a run's first pass: its history is empty, and the start
            # statement put what the pass needs in the task (no read of the run needed)
            thread = self.build(Thread(start["workflow_id"], task.run_id, "", task.queue),
                                 start["name"], start["args"], start["config"], 1, [])
            thread.inbox = bool(task.payload.get("inbox"))
            return thread
        return await self._rebuild_run(task.run_id, task.dim)

    async def _refresh(self, thread: ThreadRun) -> ThreadRun | None:
        """Bring a blocked thread up to date with the database, or None if it is stale: any
        pass committed by another worker since this copy's last commit bumped the version."""
        version, rows, inbox = await self.ns.passes.load_steps(
            thread.ref.run_id, thread.ref.dim, list(thread.pending), thread.counter)
        if version != thread.version or any(
                r["idx"] >= thread.counter or r.get("seq") is not None for r in rows):
            return None
        thread.inbox = thread.inbox or inbox
        thread.deliver(rows)
        return thread

    async def _rebuild_run(self, run_id: str, dim: str) -> ThreadRun | None:
        meta, steps = await self.ns.passes.load_thread(run_id, dim)
        if meta is None or meta["status"] != "running" or not thread_open(
                meta["run_status"], meta["signal_in"], dim):
            return None
        thread = self.build(
            Thread(meta["workflow_id"], meta["run_id"], meta["dim"], meta["task_queue"]),
            meta["name"], meta["args"], meta["config"], meta["attempt"], steps)
        thread.version = int(meta["version"])
        thread.inbox = bool(meta.get("inbox"))
        return thread

    def build(self, ref: Thread, name: str, args: Any, config: Any, attempt: int,
              steps: list[dict[str, Any]]) -> ThreadRun:
        """A new thread of function ``name`` over recorded ``steps`` (not run yet)."""
        fn = self.functions.get(name)
        if fn is None:
            raise UnknownWorkflowError(
                f"workflow {name!r} is not registered on this worker "
                f"(task queue {ref.task_queue!r})")
        thread = ThreadRun(ref=ref, name=name, namespace=self.ns.namespace,
                           args=list(args or []), config=config or {}, attempt=attempt,
                           history={s["idx"]: s for s in steps})
        thread.start(self.make_main(thread, fn))
        return thread

    async def _finish(self, thread: ThreadRun, task: Task, lease: Lease) -> PassOutcome | None:
        """Commit the end of a thread whose function returned or raised (or schedule the
        workflow's retry); returns the commit's outcome, None when nothing was committed."""
        commands, delivered = thread.take_commands()
        assert thread.task is not None
        exc = thread.task.exception() if not thread.task.cancelled() else WorkflowInterruption()
        finish: tuple[str, str | None, str | None] | None = None
        if isinstance(exc, ContinueAsNewError) and thread.ref.dim == "":
            # the durable calls the run made but did not await are dropped with it
            c = ContinueAsNew(thread.counter, guid(), exc.workflow_name or thread.name,
                              exc.task_queue or thread.ref.task_queue, exc.args_json)
            outcome = await self.ns.passes.commit_pass(thread.ref, [], delivered, continued=c,
                                                       lease=lease, version=thread.version)
            observe.workflow_finished(thread, ("continued", None, None), outcome)
            return outcome
        if thread.cancel_requested and not thread.closing and isinstance(
                exc, WorkflowInterruption | asyncio.CancelledError | MemFlowCancelledError):
            # the run's cancellation escaped the workflow function: the run is cancelled
            finish = cancelled_finish(thread.ref.workflow_id, thread.ref.dim,
                                      thread.cancel_reason)
        elif isinstance(exc, WorkflowInterruption) and not thread.closing:
            exc = cancelled_by_workflow_code()  # the engine did not stop this pass
        if finish is not None:
            pass
        elif exc is None:
            try:
                finish = ("completed", payload.dumps(thread.task.result(), "workflow result"),
                          None)
            except (TypeError, ValueError) as err:
                finish = ("failed", None, error_json(MemFlowFatalError(str(err))))
        elif isinstance(exc, WorkflowInterruption | asyncio.CancelledError):
            await self.ns.tasks.delete_task(task, self.owner)
            return None
        elif isinstance(exc, NON_RETRYABLE):
            assert isinstance(exc, MemFlowError)
            finish = ("failed", None, error_json(exc))
        else:
            policy = workflow_policy(thread)
            if thread.ref.dim == "" and thread.attempt < policy.maximum_attempts:
                if commands or delivered:
                    outcome = await self.ns.passes.commit_pass(thread.ref, commands, delivered,
                                                        lease=lease, version=thread.version)
                    if outcome.refused is not None:
                        return outcome
                delay = policy.delay(thread.attempt)
                log.info("workflow %s failed (attempt %d of %d), retrying in %.1fs: %s",
                         thread.ref.workflow_id, thread.attempt, policy.maximum_attempts,
                         delay, exc)
                await self.ns.workflows.retry_workflow(thread.ref.run_id, task, self.owner, delay)
                return None
            maxed = MemFlowMaxedError(str(exc))
            maxed.stack = error_to_dict(exc)["stack"]
            finish = ("failed", None, error_json(maxed))
        outcome = await self.ns.passes.commit_pass(thread.ref, commands, delivered, finish=finish,
                                            lease=lease, version=thread.version)
        observe.workflow_finished(thread, finish, outcome)
        self._start_local(outcome.local)
        return outcome
