"""How a thread's function is called: arguments decoded, workflow interceptors around it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from memflow import payload, registry
from memflow.engine.thread import ThreadRun
from memflow.workflow.context import WorkflowContext


def make_main(thread: ThreadRun, fn: Callable[..., Any]) -> Callable[[], Coroutine[Any, Any, Any]]:
    """The coroutine factory that runs ``fn`` for ``thread`` inside the interceptor chain.

    The chain runs on every pass (replays included), inside the workflow: the first registered
    interceptor is the outermost, and durable calls an interceptor makes take the thread's next
    counter slots just like the workflow's own. An error raised by the workflow reaches every
    interceptor on its way out; an error raised by an interceptor ends the pass like one raised
    by the workflow (retried per the workflow's ``config``, then failed).
    """
    async def main() -> Any:
        args = payload.decode_args(fn, thread.args)
        interceptors = registry.interceptors()
        ctx = WorkflowContext(thread)

        async def chain(i: int) -> Any:
            if i == len(interceptors):
                return await fn(*args)
            out = interceptors[i].execute(ctx, lambda: chain(i + 1))
            return await out if inspect.isawaitable(out) else out
        return await chain(0)
    return main
