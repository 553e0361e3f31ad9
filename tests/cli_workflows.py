"""Workflows and activities the command-line tests serve with ``memflow worker``."""

from __future__ import annotations

from typing import Any

from memflow import workflow


async def greet(name: str) -> str:
    """No steps: just a result."""
    return f"Hello, {name}!"


async def shout(text: str) -> str:
    """An activity."""
    return text.upper()


async def loud_greet(name: str) -> str:
    """One activity step, on this worker's own activity topic."""
    acts = workflow.proxy_activities()
    result: str = await acts.shout(f"hello, {name}")
    await workflow.sleep_for(0.01)
    return result


async def waiter(signal_id: str) -> Any:
    """Waits for a signal and returns its data."""
    return await workflow.wait_for(signal_id)


async def sleeper(seconds: float) -> float:
    """Sleeps durably (long enough to be interrupted)."""
    return await workflow.sleep_for(seconds)


async def failing(message: str) -> None:
    """Fails at once (one attempt: the workflow fails with code 597)."""
    raise ValueError(message)


async def hook_target(signal_id: str) -> Any:
    """Waits for what a hook thread sends it."""
    return await workflow.wait_for(signal_id)


async def hook_sender(signal_id: str, value: Any) -> None:
    """Run as a hook thread of ``hook_target``: sends the signal it waits for."""
    await workflow.signal(signal_id, value)


async def chained(n: int) -> int:
    """Continues as new until run ``n`` is 0, which returns."""
    if n > 0:
        workflow.continue_as_new(n - 1)
    return n


WORKFLOWS = [greet, loud_greet, waiter, sleeper, failing, hook_target, hook_sender, chained]
ACTIVITIES = {"shout": shout}


async def remote_shout(name: str) -> str:
    """Calls ``shout`` on the 'shouter' activity queue (served by another process)."""
    acts = workflow.proxy_activities(task_queue="shouter")
    result: str = await acts.shout(name)
    return result
