"""A worker process for crash tests: ``python -m tests.crash_worker DSN NAMESPACE``.

Activities log every execution in the table ``<namespace>.exec_log``. Environment flags make
the process hang at a chosen point, so a test can kill it there with SIGKILL:
``HANG_ACTIVITY=i`` hangs inside activity ``step(i)``; ``HANG_PASS=i`` hangs inside the
workflow pass that follows step ``i``'s result (writing the file ``HANG_MARKER`` first).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from memflow import workflow
from tests.support import log_execution, serve_worker


def step(i: int) -> int:
    log_execution(i)
    return i * 10


# module level: registered at import, so a fresh worker can run `step` before any replay
acts = workflow.proxy_activities(activities=[step],
                                 retry_policy={"maximum_attempts": 5, "initial_interval": 0.1})


async def crashy(n: int) -> int:
    total = 0
    for i in range(n):
        total += await acts.step(i)
        if os.environ.get("HANG_PASS") == str(i):
            Path(os.environ["HANG_MARKER"]).write_text("in pass")
            time.sleep(120)  # blocks the pass itself, on purpose
    await workflow.sleep_for(0.1)
    return total


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO)
    serve_worker("crash", [crashy], options={"lease_seconds": 1.5, "poll_seconds": 1})
