"""Actions: POST /action/{name}. Each first renders a confirmation page; the confirmed POST
then acts through the public API (``memflow.Client`` and its handles), as the CLI does.

Every POST must carry the session's CSRF token (see ``security.check_post``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from memflow.dashboard.context import chosen_namespace, client_of, render
from memflow.dashboard.security import check_post
from memflow.dashboard.templating import query
from memflow.errors import MemFlowError, WorkflowNotFoundError

FINISHED = ("completed", "failed", "interrupted", "cancelled", "continued", "timed_out")
TITLES = {"signal": "Send a signal", "terminate": "Terminate the run",
          "cancel": "Cancel the run", "pause": "Pause the schedule",
          "unpause": "Unpause the schedule", "trigger": "Trigger the schedule now"}


class ActionError(Exception):
    """An action that cannot be done, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


async def _live_handle(request: Request, form: Any) -> Any:
    workflow_id = str(form.get("id") or "")
    if not workflow_id:
        raise ActionError("no workflow id given")
    handle = client_of(request).workflow.get_handle(workflow_id=workflow_id,
                                                    namespace=chosen_namespace(request))
    try:
        status = (await handle.describe()).status
    except WorkflowNotFoundError:
        raise ActionError(f"workflow {workflow_id} not found", 404) from None
    if status in FINISHED:
        raise ActionError(f"workflow {workflow_id} is already {status}", 409)
    return handle


async def _signal(request: Request, form: Any) -> None:
    signal_id = str(form.get("signal_id") or "")
    if not signal_id:
        raise ActionError("give the signal id")
    raw = str(form.get("data") or "").strip()
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ActionError(f"the signal data is not JSON: {exc}") from None
    await client_of(request).workflow.signal(signal_id, data,
                                             namespace=chosen_namespace(request))


async def _terminate(request: Request, form: Any) -> None:
    handle = await _live_handle(request, form)
    reason = str(form.get("reason") or "") or "terminated from the dashboard"
    await handle.interrupt(reason=reason)


async def _cancel(request: Request, form: Any) -> None:
    handle = await _live_handle(request, form)
    cancel = getattr(handle, "cancel", None)
    if not callable(cancel):
        raise ActionError("this version of memflow cannot cancel a run")
    await cancel(reason=str(form.get("reason") or "") or None)


def _schedule_action(method: str) -> Callable[[Request, Any], Awaitable[None]]:
    async def act(request: Request, form: Any) -> None:
        schedules = getattr(client_of(request), "schedule", None)
        if schedules is None:
            raise ActionError("this version of memflow has no schedules")
        schedule_id = str(form.get("schedule_id") or "")
        if not schedule_id:
            raise ActionError("no schedule id given")
        handle = schedules.get_handle(schedule_id, namespace=chosen_namespace(request))
        await getattr(handle, method)()
    return act


ACTIONS: dict[str, Callable[[Request, Any], Awaitable[None]]] = {
    "signal": _signal, "terminate": _terminate, "cancel": _cancel,
    "pause": _schedule_action("pause"), "unpause": _schedule_action("unpause"),
    "trigger": _schedule_action("trigger"),
}


def _back(request: Request, name: str, form: Any) -> str:
    ns = chosen_namespace(request)
    if name in ("pause", "unpause", "trigger"):
        return "/schedules" + query({"ns": ns, "done": name})
    if form.get("id"):
        return "/run" + query({"ns": ns, "id": form.get("id"), "done": name})
    return "/" + query({"ns": ns})


async def action(request: Request) -> Response:
    """POST /action/{name}: confirm, then act, then go back to the page it came from."""
    name = request.path_params["name"]
    form = await request.form()
    refused = check_post(request, form)
    if refused is not None:
        return await render(request, "confirm", status_code=403, action=None, title="Refused",
                            fields={}, error=refused, back="/")
    act = ACTIONS.get(name)
    if act is None:
        return await render(request, "confirm", status_code=404, action=None,
                            title="Unknown action", fields={}, error=f"no action {name!r}",
                            back="/")
    fields = {k: str(v) for k, v in form.items() if k not in ("csrf", "confirmed")}
    back = _back(request, name, form)
    if form.get("confirmed") != "yes":
        return await render(request, "confirm", action=name, title=TITLES[name],
                            fields=fields, error=None, back=back)
    try:
        await act(request, form)
    except ActionError as exc:
        return await render(request, "confirm", status_code=exc.status, action=None,
                            title=TITLES[name], fields=fields, error=str(exc), back=back)
    except (MemFlowError, ValueError, TypeError) as exc:
        return await render(request, "confirm", status_code=400, action=None,
                            title=TITLES[name], fields=fields, error=str(exc), back=back)
    return RedirectResponse(back, status_code=303)
