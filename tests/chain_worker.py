"""A worker process for workflow timeouts across continue-as-new:
``python -m tests.chain_worker DSN NAMESPACE``.

It serves the queue ``chain`` with ``chain_paced(n, pause, stop, stall_at)``: each run sleeps
``pause`` seconds and continues as new, run ``stall_at`` (if any) waits for a signal that
never comes, and run ``stop`` (if any) returns how many runs ran; ``chain_parent(child_id,
pause)`` awaits such a chain (never stopping) as its exec_child child ``child_id``;
``chain_doubling(pause)`` continues every ``pause`` seconds for ever and answers update
``double(x)`` with ``2 * x``. Leases are 5 s, so a task left to its lease's end shows as a
late deadline.
"""

from __future__ import annotations

from memflow import workflow
from tests.support import serve_worker


async def chain_paced(n: int, pause: float, stop: int | None = None,
                      stall_at: int | None = None) -> int:
    if n == stall_at:
        await workflow.wait_for(f"never-{workflow.info().workflow_id}")
    await workflow.sleep_for(pause)
    if stop is not None and n >= stop:
        return n
    workflow.continue_as_new(n + 1, pause, stop, stall_at)
    return n  # not reached


async def chain_parent(child_id: str, pause: float) -> int:
    result: int = await workflow.exec_child(args=[0, pause], workflow_name="chain_paced",
                                            workflow_id=child_id)
    return result


async def chain_doubling(pause: float) -> None:
    workflow.on_update("double", lambda x: 2 * x)
    await workflow.sleep_for(pause)
    workflow.continue_as_new(pause)


if __name__ == "__main__":
    serve_worker("chain", [chain_paced, chain_parent, chain_doubling], options={"lease_seconds": 5})
