"""The workflow functions and activities the workloads run.

Activities are ``async def`` (they run on the worker's event loop; sync ones would go to a
thread pool). Workflows call them through ``workflow.proxy_activities()`` with no task queue,
so the calls go to ``<queue>-activity``, served by the same ``Worker.create(...,
activities=...)`` that runs the workflows.
"""

from __future__ import annotations

import asyncio
import time

from memflow import workflow


async def first(name: str) -> str:
    """W1's first activity: a short string."""
    return f"a:{name}"


async def second(text: str) -> str:
    """W1's second activity: a short string."""
    return f"b:{text}"


async def third(text: str) -> str:
    """W1's third activity: a short string."""
    return f"c:{text}"


async def number(i: int) -> int:
    """W2's activity: returns its argument."""
    return i


async def echo(text: str) -> str:
    """W3's (and ``long``'s) activity: returns its argument."""
    return text


async def wall_clock() -> float:
    """The ``timers`` workload's activity: the worker's wall-clock time (``time.time()``)."""
    return time.time()


ACTIVITIES = [first, second, third, number, echo, wall_clock]


async def three_steps(name: str) -> str:
    """W1: three activities in sequence."""
    acts = workflow.proxy_activities()
    a = await acts.first(name)
    b = await acts.second(a)
    return str(await acts.third(b))


async def fan_out(count: int) -> int:
    """W2: ``count`` activities in parallel (``asyncio.gather``), summed."""
    acts = workflow.proxy_activities()
    results = await asyncio.gather(*(acts.number(i) for i in range(count)))
    return sum(results)


async def one_step(text: str) -> str:
    """W3: one activity."""
    acts = workflow.proxy_activities()
    return str(await acts.echo(text))


async def wait_signal(signal_id: str) -> object:
    """W4 (and ``rss``): wait for the signal ``signal_id`` and return its data."""
    return await workflow.wait_for(signal_id)


async def sleep_then_stamp(seconds: float) -> float:
    """``timers``: sleep durably, then record the wall-clock time in an activity."""
    acts = workflow.proxy_activities()
    await workflow.sleep_for(seconds)
    return float(await acts.wall_clock())


async def many_steps(steps: int) -> int:
    """``long``: ``steps`` activities in sequence."""
    acts = workflow.proxy_activities()
    for i in range(steps):
        await acts.echo(str(i))
    return steps


async def many_steps_continued(total: int, every: int, done: int = 0) -> int:
    """``long-can``: ``total`` activities in sequence, continuing as new every ``every``."""
    acts = workflow.proxy_activities()
    for i in range(done, min(total, done + every)):
        await acts.echo(str(i))
    if done + every < total:
        workflow.continue_as_new(total, every, done + every)
    return total


WORKFLOWS = [three_steps, fan_out, one_step, wait_signal, sleep_then_stamp, many_steps,
             many_steps_continued]
