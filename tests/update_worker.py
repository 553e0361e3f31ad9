"""A worker process for update crash tests: ``python -m tests.update_worker DSN NAMESPACE``.

Activities log every execution in ``<namespace>.exec_log`` (step = the activity's tag).
``HANG_ACTIVITY=tag`` hangs inside activity ``record(tag)``; ``HANG_HANDLER=n`` hangs inside
the workflow pass of update ``deposit(n)``, right after its first activity returned (writing
the file ``HANG_MARKER`` first), so a test can SIGKILL the process there; ``HANG_QUERY=1``
hangs the same way inside the ``balance`` query's handler.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from memflow import workflow
from tests.support import log_execution, serve_worker


def record(tag: int) -> int:
    log_execution(tag)
    return tag


acts = workflow.proxy_activities(activities=[record],
                                 retry_policy={"maximum_attempts": 5, "initial_interval": 0.1})


async def ledger() -> dict:
    state: dict = {"balance": 0, "deposits": [], "closed": False}

    async def deposit(n: int) -> int:
        await acts.record(n)                   # logged once per run of the handler's step
        if os.environ.get("HANG_HANDLER") == str(n):
            Path(os.environ["HANG_MARKER"]).write_text("in handler")
            time.sleep(120)                    # blocks the pass itself, on purpose
        await acts.record(n + 1000)
        state["balance"] += n
        state["deposits"].append(n)
        return int(state["balance"])

    def close() -> dict:
        state["closed"] = True
        return dict(state)

    workflow.on_update("deposit", deposit)
    workflow.on_update("close", close)
    def balance() -> int:
        if os.environ.get("HANG_QUERY"):
            Path(os.environ["HANG_MARKER"]).write_text("in query")
            time.sleep(120)                    # blocks the whole worker, on purpose
        return int(state["balance"])

    workflow.on_query("balance", balance)
    await workflow.wait_condition(lambda: state["closed"])
    return state


if __name__ == "__main__":
    serve_worker("ledger", [ledger], options={"lease_seconds": 1.5, "poll_seconds": 1})
