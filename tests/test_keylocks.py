"""One pass at a time per workflow thread in a worker, even as the lock changes hands."""

from __future__ import annotations

import asyncio

from memflow.engine.keylocks import KeyLocks


async def test_a_newcomer_waits_while_the_lock_passes_to_a_waiter() -> None:
    locks = KeyLocks()
    inside: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    release_a = asyncio.Event()

    async def work(name: str, hold: asyncio.Event | None = None) -> None:
        inside.append(name)
        if len(inside) > 1:
            overlaps.append(tuple(inside))
        if hold is not None:
            await hold.wait()
        await asyncio.sleep(0.01)
        inside.remove(name)

    a = asyncio.create_task(locks.run("k", lambda: work("a", release_a)))
    await asyncio.sleep(0)
    b = asyncio.create_task(locks.run("k", lambda: work("b")))
    await asyncio.sleep(0)
    release_a.set()
    await asyncio.sleep(0.011)  # a is leaving: the lock is handed to b, which has not run yet
    await a
    c = asyncio.create_task(locks.run("k", lambda: work("c")))  # arrives in that gap
    await asyncio.gather(b, c)
    assert overlaps == []
    assert len(locks) == 0  # nothing kept once nobody holds or waits


async def test_keys_are_independent_and_order_is_kept() -> None:
    locks = KeyLocks()
    order: list[str] = []

    async def work(name: str) -> str:
        order.append(name)
        await asyncio.sleep(0)
        return name

    got = await asyncio.gather(*(locks.run(k, lambda n=f"{k}{i}": work(n))
                                 for i in range(3) for k in ("x", "y")))
    assert got == ["x0", "y0", "x1", "y1", "x2", "y2"]
    assert [n for n in order if n[0] == "x"] == ["x0", "x1", "x2"]
    assert len(locks) == 0
