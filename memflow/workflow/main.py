"""How a thread's function is called: arguments decoded, workflow interceptors around it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from memflow import payload, registry
from memflow.engine.thread import ThreadRun
from memflow.workflow.context import WorkflowContext


def make_main(thread: ThreadRun, fn: Callable[..., Any]) -> Callable[[], Coroutine[Any, Any, Any]]:
    """The coroutine factory that runs ``fn`` for ``thread`` inside the interceptor chain."""
    async def main() -> Any:
        args = payload.decode_args(fn, thread.args)
        interceptors = registry.interceptors()
        ctx = WorkflowContext(thread)

        async def chain(i: int) -> Any:
            if i == len(interceptors):
                return await fn(*args)
            return await interceptors[i].execute(ctx, lambda: chain(i + 1))
        return await chain(0)
    return main
