"""Changing workflow code safely while runs are in flight: ``workflow.patched(id)`` and
``workflow.deprecate_patch(id)`` (the three-step life cycle is in docs/deploys.md)."""

from __future__ import annotations

from memflow.engine.thread import current_thread


def _check(patch_id: object, what: str) -> str:
    if not isinstance(patch_id, str) or not patch_id:
        raise TypeError(f"{what}: patch_id must be a non-empty str, not {patch_id!r}")
    if len(patch_id) > 1000:
        raise ValueError(f"{what}: patch_id is longer than 1,000 characters")
    return patch_id


def patched(patch_id: str) -> bool:
    """Whether this run takes the new code path of patch ``patch_id``.

    ``True`` in a run that reaches this point for the first time with code that has the patch:
    a marker is recorded as the next step. On replay it returns whether the marker was
    recorded here: a history written by older code (no marker at this point) answers
    ``False`` and takes no step slot, so the calls that follow keep their recorded step
    numbers. The answer is the same for the rest of the run.

    ```python
    if workflow.patched("send-receipt"):
        await acts.send_receipt(order)      # new code
    else:
        await acts.send_email(order)        # what older runs recorded
    ```
    """
    _check(patch_id, "workflow.patched()")
    return current_thread("workflow.patched()").patch(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark patch ``patch_id`` as the only code path left (step 2 of the life cycle): histories
    with the patch's marker and histories without it both replay (the marker, when recorded
    there, is consumed; otherwise nothing is). New runs still record the marker, so workers
    that run the previous code (with ``patched``) replay them during a rolling deploy."""
    _check(patch_id, "workflow.deprecate_patch()")
    current_thread("workflow.deprecate_patch()").patch(patch_id)
