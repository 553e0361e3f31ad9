"""The sticky cache: blocked workflow threads kept in memory, so they resume without replay."""

from __future__ import annotations

from collections import OrderedDict

from memflow.engine.thread import ThreadRun
from memflow.observe import metrics


class ThreadCache:
    """A bounded LRU of blocked threads, keyed by (run_id, dimension)."""

    def __init__(self, size: int = 512):
        self.size = size
        self._items: OrderedDict[tuple[str, str], ThreadRun] = OrderedDict()

    def take(self, key: tuple[str, str]) -> ThreadRun | None:
        """Remove and return the cached thread for ``key``."""
        thread = self._items.pop(key, None)
        metrics.cache("miss" if thread is None else "hit")
        return thread

    def peek(self, key: tuple[str, str]) -> ThreadRun | None:
        """The cached thread for ``key``, left in place (a query reads it; no LRU move)."""
        return self._items.get(key)

    def put(self, thread: ThreadRun) -> None:
        """Keep a blocked thread; the least recently used one is closed past the bound."""
        if self.size <= 0:
            metrics.cache("eviction")
            thread.close()
            return
        key = (thread.ref.run_id, thread.ref.dim)
        self._items[key] = thread
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            _, old = self._items.popitem(last=False)
            metrics.cache("eviction")
            old.close()

    def clear(self) -> None:
        """Close and forget every cached thread."""
        for thread in self._items.values():
            thread.close()
        self._items.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
