"""One asyncio lock per key, kept only while someone holds or waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class KeyLocks:
    """Mutual exclusion per key (a workflow thread): ``run(key, work)`` runs ``work()`` alone
    among the calls of the same key, in arrival order. A key's lock is dropped once nobody
    holds or waits for it (counted, since a released lock looks free before its next waiter
    has woken up)."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, list[int]]] = {}

    async def run(self, key: Any, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` while holding ``key``'s lock."""
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                return await work()
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
