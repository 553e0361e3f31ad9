"""The error classes of MemFlow, each with the numeric ``code`` of the seed system."""

from __future__ import annotations

import traceback
from typing import Any


class MemFlowError(Exception):
    """Base class of every MemFlow error; carries ``code``, ``message`` and ``stack``."""

    code: int = 500

    def __init__(self, message: str = "", code: int | None = None, stack: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.stack = stack or ""

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON document stored and returned with ``throw_on_error=False``."""
        return {"message": self.message, "code": self.code, "stack": self.stack,
                "type": type(self).__name__}


class MemFlowFatalError(MemFlowError):
    """A failure that is never retried (code 598)."""

    code = 598


class NonDeterminismError(MemFlowFatalError):
    """A replayed workflow does not do what its history recorded (code 598).

    ``step`` is the counter slot (``dimension`` the thread: ``""`` for the main one),
    ``recorded`` the recorded call (``{"kind", "name"}``) and ``requested`` what the code asks
    for there now (``None`` when the code no longer reaches that step). On a worker this fails
    the *pass*, not the workflow: the run stays running, the error is shown by
    ``describe().error`` and the pass is retried with backoff (see docs/deploys.md)."""

    def __init__(self, message: str = "", code: int | None = None, stack: str | None = None,
                 *, step: int | None = None, dimension: str = "",
                 recorded: dict[str, Any] | None = None,
                 requested: dict[str, Any] | None = None):
        super().__init__(message, code, stack)
        self.step = step
        self.dimension = dimension
        self.recorded = recorded
        self.requested = requested

    def details(self) -> dict[str, Any]:
        """The divergence as JSON fields: step, dimension, recorded, requested."""
        return {"step": self.step, "dimension": self.dimension, "recorded": self.recorded,
                "requested": self.requested}

    def to_dict(self) -> dict[str, Any]:
        """The error document, with the divergence's fields."""
        return {**super().to_dict(), **self.details()}


class MemFlowMaxedError(MemFlowError):
    """Retries were exhausted (code 597)."""

    code = 597


class MemFlowTimeoutError(MemFlowError):
    """A wait or an activity ran out of time (code 596)."""

    code = 596


class MemFlowRetryError(MemFlowError):
    """A retryable failure (code 599)."""

    code = 599


class MemFlowInterruptedError(MemFlowError):
    """The workflow was interrupted (code 410)."""

    code = 410


class MemFlowCancelledError(MemFlowError):
    """The workflow was cancelled (``handle.cancel``) and let the cancellation escape
    (code 499)."""

    code = 499


class DuplicateJobError(MemFlowError):
    """A workflow with this id is still live in the namespace."""

    code = 409

    def __init__(self, workflow_id: str):
        super().__init__(f"Duplicate job: {workflow_id}")
        self.workflow_id = workflow_id


class WorkflowNotFoundError(MemFlowError):
    """No workflow with this id exists in the namespace."""

    code = 404

    def __init__(self, workflow_id: str):
        super().__init__(f"Workflow not found: {workflow_id}")
        self.workflow_id = workflow_id


class ScheduleAlreadyExistsError(MemFlowError):
    """A schedule with this id already exists in the namespace."""

    code = 409

    def __init__(self, schedule_id: str):
        super().__init__(f"Schedule already exists: {schedule_id}")
        self.schedule_id = schedule_id


class ScheduleNotFoundError(MemFlowError):
    """No schedule with this id exists in the namespace."""

    code = 404

    def __init__(self, schedule_id: str):
        super().__init__(f"Schedule not found: {schedule_id}")
        self.schedule_id = schedule_id


class QueryFailedError(MemFlowError):
    """A query could not be answered: unknown name, a handler error, or a handler that called
    a durable API (queries only read the workflow's state)."""

    code = 500


class UpdateRejectedError(MemFlowError):
    """An update's validator refused it; nothing was recorded."""

    code = 400


class UpdateFailedError(MemFlowError):
    """An update's handler raised (the workflow itself goes on), or its run is not running.
    ``cause`` holds the handler's error document (message, code, type, stack), if any."""

    code = 500
    cause: dict[str, Any] | None = None


class WorkflowInterruption(BaseException):
    """Raised inside workflow code when the engine stops a pass; user code must not swallow it.

    It derives from ``BaseException`` so that ``except Exception`` in a workflow does not catch
    it; ``did_interrupt`` recognises it for code that catches everything.
    """


class ContinueAsNewError(BaseException):
    """Raised by ``workflow.continue_as_new()``: the engine ends the run as ``"continued"`` and
    starts the next run of the id with ``args``. Like ``WorkflowInterruption`` it derives from
    ``BaseException``, so ``except Exception`` in a workflow does not stop it; ``did_interrupt``
    recognises it for code that catches everything."""

    def __init__(self, args_json: str, workflow_name: str | None, task_queue: str | None):
        super().__init__("continue as new")
        self.args_json = args_json
        self.workflow_name = workflow_name
        self.task_queue = task_queue


NON_RETRYABLE: tuple[type[MemFlowError], ...] = (
    MemFlowFatalError, MemFlowMaxedError, MemFlowTimeoutError, MemFlowInterruptedError,
    MemFlowCancelledError,
)

_BY_NAME: dict[str, type[MemFlowError]] = {
    cls.__name__: cls
    for cls in (MemFlowError, MemFlowFatalError, MemFlowMaxedError, MemFlowTimeoutError,
                MemFlowRetryError, MemFlowInterruptedError, NonDeterminismError,
                QueryFailedError, UpdateRejectedError, UpdateFailedError, MemFlowCancelledError)
}
_BY_CODE = {598: MemFlowFatalError, 597: MemFlowMaxedError, 596: MemFlowTimeoutError,
            599: MemFlowRetryError, 410: MemFlowInterruptedError, 499: MemFlowCancelledError}


def error_to_dict(err: BaseException, code: int | None = None) -> dict[str, Any]:
    """Serialise any exception to ``{"message", "code", "stack", "type"}``."""
    stack = "".join(traceback.format_exception(err))
    if isinstance(err, NonDeterminismError):
        return {"message": err.message, "code": code or err.code,
                "stack": err.stack or stack, "type": type(err).__name__, **err.details()}
    if isinstance(err, MemFlowError):
        return {"message": err.message, "code": code or err.code,
                "stack": err.stack or stack, "type": type(err).__name__}
    return {"message": str(err), "code": code or 500, "stack": stack, "type": type(err).__name__}


def error_from_dict(data: dict[str, Any]) -> MemFlowError:
    """Rebuild a MemFlow error from its stored document (the class by name, else by code)."""
    if data.get("type") == "DuplicateJobError":
        dup = DuplicateJobError(str(data.get("workflow_id", "")))
        dup.message = str(data.get("message", dup.message))
        dup.args = (dup.message,)
        return dup
    if data.get("type") == "NonDeterminismError":
        return NonDeterminismError(
            str(data.get("message", "")), code=data.get("code"), stack=data.get("stack"),
            step=data.get("step"), dimension=str(data.get("dimension") or ""),
            recorded=data.get("recorded"), requested=data.get("requested"))
    cls = _BY_NAME.get(str(data.get("type"))) or _BY_CODE.get(int(data.get("code") or 0))
    cls = cls or MemFlowError
    return cls(str(data.get("message", "")), code=data.get("code"), stack=data.get("stack"))


def did_interrupt(err: BaseException) -> bool:
    """True when ``err`` is the engine's own interruption of a pass, not a real failure."""
    import asyncio

    return isinstance(err, WorkflowInterruption | ContinueAsNewError | asyncio.CancelledError
                      | GeneratorExit)
