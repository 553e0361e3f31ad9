"""The durable commands a workflow pass records: one frozen record per kind of call.

The workflow layer builds these records, the engine passes them through, and only
``memflow.store`` turns them into SQL parameters. Every record has the step slot ``idx`` it
takes in its thread's history; ``kind`` is the step's kind as stored, ``step_name`` the name
the step is stored (and checked on replay) under, and ``immediate`` says whether the result is
known as soon as the command is committed. Texts named ``*_json`` are JSON documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal


@dataclass(frozen=True, slots=True)
class Command:
    """A durable call a workflow made that is not in its history yet (the base of every kind)."""

    idx: int
    kind: ClassVar[str]
    immediate: ClassVar[bool] = True

    @property
    def step_name(self) -> str | None:
        """The name of the step row (None for kinds without one)."""
        return None


@dataclass(frozen=True, slots=True)
class LocalLease:
    """An activity task created already leased to the worker that scheduled it (it serves the
    activity's queue), which runs it at once: no NOTIFY, no claim."""

    owner: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ActivityCall(Command):
    """Run activity ``name``: a task on ``task_queue`` (the activity topic) with
    ``task_payload_json`` (what the activity worker needs to run it); ``priority`` and
    ``concurrency_key`` are its task's place in the queue's flow control."""

    name: str
    task_queue: str
    task_payload_json: str
    leased_to: LocalLease | None = None
    priority: int = 0
    concurrency_key: str | None = None
    kind: ClassVar[str] = "activity"
    immediate: ClassVar[bool] = False

    @property
    def step_name(self) -> str | None:
        """The activity's name."""
        return self.name

    def leased(self, lease: LocalLease) -> ActivityCall:
        """This call, with its task created already leased (``dataclasses.replace``, faster)."""
        return ActivityCall(self.idx, self.name, self.task_queue, self.task_payload_json, lease,
                            self.priority, self.concurrency_key)


@dataclass(frozen=True, slots=True)
class Sleep(Command):
    """A durable timer of ``seconds``."""

    seconds: float
    kind: ClassVar[str] = "sleep"
    immediate: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class WaitForSignal(Command):
    """Wait for signal ``signal_id`` (consuming one sent earlier); with ``timeout_seconds``, a
    timer whose task (``timeout_payload_json``) fails the wait when it fires first."""

    signal_id: str
    timeout_seconds: float | None = None
    timeout_payload_json: str | None = None
    kind: ClassVar[str] = "wait"

    @property
    def step_name(self) -> str | None:
        """The signal id waited for."""
        return self.signal_id


@dataclass(frozen=True, slots=True)
class SendSignal(Command):
    """Send signal ``signal_id`` with ``data_json``, once across replays."""

    signal_id: str
    data_json: str
    kind: ClassVar[str] = "signal"

    @property
    def step_name(self) -> str | None:
        """The signal id sent."""
        return self.signal_id


@dataclass(frozen=True, slots=True)
class ChildStart(Command):
    """Start a child workflow run (the base of ``StartChild`` and ``ExecChild``).

    ``duplicate_error_json`` is the error the step records when the id is held by a live run.
    """

    workflow_id: str
    run_id: str
    workflow_name: str
    task_queue: str
    args_json: str
    entity_type: str | None
    search_json: str
    config_json: str
    signal_in: bool | None
    expire_seconds: float
    trace_json: str | None
    duplicate_error_json: str
    timeout_seconds: float | None = None        # the child's workflow timeout
    timeout_payload_json: str | None = None     # its deadline task's payload (the error)

    @property
    def step_name(self) -> str | None:
        """The child's workflow id."""
        return self.workflow_id


@dataclass(frozen=True, slots=True)
class StartChild(ChildStart):
    """Start a child workflow without waiting: the step holds the child's id at once."""

    kind: ClassVar[str] = "start_child"


@dataclass(frozen=True, slots=True)
class ExecChild(ChildStart):
    """Start a child workflow and wait for its outcome (the child settles the step)."""

    kind: ClassVar[str] = "exec_child"
    immediate: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class HookStart(Command):
    """Start function ``workflow_name`` as thread ``thread_path`` of workflow
    ``target_workflow_id`` (the base of ``StartHook`` and ``ExecHook``). ``closed_error_json``
    is the error the step records when the target takes no hooks."""

    target_workflow_id: str
    thread_path: str
    workflow_name: str
    task_queue: str
    args_json: str
    closed_error_json: str
    signal_id: str | None = None

    @property
    def step_name(self) -> str | None:
        """The signal id that may answer the hook (None for most hooks)."""
        return self.signal_id


@dataclass(frozen=True, slots=True)
class StartHook(HookStart):
    """Start a hook; the step holds the hook's thread path at once."""

    kind: ClassVar[str] = "hook"


@dataclass(frozen=True, slots=True)
class ExecHook(HookStart):
    """Start a hook and wait for it (or for signal ``signal_id``, if it comes first)."""

    kind: ClassVar[str] = "exec_hook"


@dataclass(frozen=True, slots=True)
class Interrupt(Command):
    """Interrupt workflow ``workflow_id`` (with ``descend``, its live descendants too): its
    runs end with ``error_json``; ``expire_seconds`` replaces their retention when given."""

    workflow_id: str
    descend: bool
    error_json: str
    expire_seconds: float | None = None
    kind: ClassVar[str] = "interrupt"

    @property
    def step_name(self) -> str | None:
        """The interrupted workflow's id."""
        return self.workflow_id


@dataclass(frozen=True, slots=True)
class Emit(Command):
    """Publish ``events_json`` (an object ``{topic: message}``); ``topics`` is the step's name
    (the topics joined by commas, at most 200 characters)."""

    topics: str
    events_json: str
    kind: ClassVar[str] = "emit"

    @property
    def step_name(self) -> str | None:
        """The topics published to."""
        return self.topics


@dataclass(frozen=True, slots=True)
class Trace(Command):
    """A trace span recorded once across replays (the step only marks that it was emitted)."""

    kind: ClassVar[str] = "trace"


@dataclass(frozen=True, slots=True)
class Now(Command):
    """The time of a pass (``workflow.now()``), recorded so that replays see the same."""

    at: datetime
    kind: ClassVar[str] = "now"
    immediate: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class PatchMarker(Command):
    """The marker of ``workflow.patched(patch_id)`` (or ``deprecate_patch``): recorded where
    code that knows the patch first runs it, so replays take the same branch."""

    patch_id: str
    kind: ClassVar[str] = "patch"
    immediate: ClassVar[bool] = False

    @property
    def step_name(self) -> str | None:
        """The patch id."""
        return self.patch_id


@dataclass(frozen=True, slots=True)
class ContinueAsNew(Command):
    """End the run as ``"continued"`` and start run ``run_id`` of the same workflow id with
    ``args_json``, running ``workflow_name`` on ``task_queue``, in the same statement: its
    history starts empty, its entity and search fields are the old run's. Not a step: it ends
    the thread (``idx`` is the counter where the code asked for it)."""

    run_id: str
    workflow_name: str
    task_queue: str
    args_json: str
    kind: ClassVar[str] = "continue_as_new"
    immediate: ClassVar[bool] = False


EntityOpName = Literal["set", "merge", "get", "delete", "append", "prepend", "remove",
                       "increment", "toggle", "set_if_not_exists"]


@dataclass(frozen=True, slots=True)
class EntityOp:
    """One validated entity operation: ``op`` at ``path`` (segments) with its argument, if
    any: ``value_json``, ``by`` (exact decimal text), ``index``, or a merge patch as
    ``tree_json`` nesting ``depth`` levels. ``what`` names the call in error messages."""

    op: EntityOpName
    what: str
    path: tuple[str, ...] = ()
    value_json: str | None = None
    by: str | None = None
    index: int | None = None
    tree_json: str | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class EntityCall(Command):
    """An entity operation as a step of the workflow."""

    operation: EntityOp
    kind: ClassVar[str] = "entity"

    @property
    def step_name(self) -> str | None:
        """The operation's name."""
        return self.operation.op


SearchOpName = Literal["set", "get", "mget", "delete", "incr", "mult"]


@dataclass(frozen=True, slots=True)
class SearchOp:
    """One validated search-field operation: ``op`` with ``fields_json`` (a flat object of
    strings), ``key``, ``keys`` or ``by`` (exact decimal text). ``what`` names the call in
    error messages."""

    op: SearchOpName
    what: str
    fields_json: str | None = None
    key: str | None = None
    keys: tuple[str, ...] = ()
    by: str | None = None


@dataclass(frozen=True, slots=True)
class SearchCall(Command):
    """A search-field operation as a step of the workflow, stored under ``name``."""

    operation: SearchOp
    name: str
    kind: ClassVar[str] = "search"

    @property
    def step_name(self) -> str | None:
        """The step's name (the operation's, or ``enrich``)."""
        return self.name


@dataclass(frozen=True, slots=True)
class AcceptUpdate(Command):
    """Admit update ``update_id`` (handler ``name``, arguments ``args_json``) into the thread:
    its step is the update's place in the history, consumed by delivery ``delivery``, and the
    update's request becomes accepted (the caller is told)."""

    update_id: str
    name: str
    args_json: str
    delivery: int
    kind: ClassVar[str] = "update"
    immediate: ClassVar[bool] = False

    @property
    def step_name(self) -> str | None:
        """The update handler's name."""
        return self.name


@dataclass(frozen=True, slots=True)
class FinishUpdate(Command):
    """The handler of update ``update_id`` returned (``status`` "done", ``result_json``) or
    raised (``status`` "failed", ``error_json``); the caller is told."""

    update_id: str
    name: str
    status: Literal["done", "failed"]
    result_json: str | None = None
    error_json: str | None = None
    kind: ClassVar[str] = "update_done"
    immediate: ClassVar[bool] = False

    @property
    def step_name(self) -> str | None:
        """The update handler's name."""
        return self.name
