"""``client.queue``: flow control on task queues — limits stored in Postgres, held by the claim
of every worker (see docs/flow-control.md and ``memflow.store.flow``)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memflow.durations import parse_duration
from memflow.ids import check_queue
from memflow.store import validate_namespace

if TYPE_CHECKING:
    from memflow.client import Client

INT32_MAX = 2**31 - 1


def check_limit(value: Any, what: str) -> int | None:
    """``value`` if it is None or a positive int (a limit), else ``ValueError``/``TypeError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a positive int or None, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1 (None means no limit), got {value}")
    if value > INT32_MAX:
        raise ValueError(f"{what} {value} is too large (at most {INT32_MAX})")
    return value


def check_rate_limit(value: Any) -> tuple[int, float] | None:
    """``(count, seconds)`` of a ``rate_limit=(count, period)`` (period: a duration such as
    ``"1 minute"``, seconds, or a timedelta), None for None; else ``ValueError``/``TypeError``."""
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"rate_limit must be (count, period), e.g. (100, '1 minute'), "
                         f"not {value!r}")
    count = check_limit(value[0], "rate_limit count")
    if count is None:
        raise ValueError("rate_limit count must be a positive int")
    seconds = parse_duration(value[1], "rate_limit period")
    if seconds <= 0:
        raise ValueError(f"rate_limit period must be longer than 0, got {value[1]!r}")
    return count, seconds


@dataclass(frozen=True)
class QueueDescription:
    """A queue's figures now and its limits.

    ``depth``: tasks due and not running (waiting for a worker, a slot or a rate token);
    ``running``: running workflows of a workflow queue, live activity attempts of an activity
    queue; ``pending``: runs waiting to be admitted (over a limit, or within a debounce
    window); ``oldest_wait_s``: how long the oldest due task has waited (None when none);
    ``limits``: ``{"concurrency", "per_key_concurrency", "rate_limit": (count, seconds)}``,
    each None when not set.
    """

    task_queue: str
    namespace: str
    depth: int
    running: int
    pending: int
    oldest_wait_s: float | None
    limits: dict[str, Any] = field(default_factory=dict)


def _description(namespace: str, row: dict[str, Any]) -> QueueDescription:
    rate = None
    if row["rate_count"] is not None:
        rate = (int(row["rate_count"]), float(row["rate_seconds"]))
    wait = row["oldest_wait_s"]
    return QueueDescription(
        task_queue=row["queue"], namespace=namespace, depth=int(row["depth"]),
        running=int(row["running"]), pending=int(row["pending"]),
        oldest_wait_s=None if wait is None else max(0.0, round(float(wait), 3)),
        limits={"concurrency": row["concurrency"],
                "per_key_concurrency": row["per_key_concurrency"], "rate_limit": rate})


class QueueClient:
    """``client.queue``: configure and describe the flow control of task queues.

    A workflow queue (``"orders"``) caps running workflows; an activity queue
    (``"payment-activity"``, served by ``register_activity_worker(..., "payment")``) caps
    running activity attempts."""

    def __init__(self, client: Client):
        self._client = client

    async def configure(self, task_queue: str, namespace: str | None = None,
                        concurrency: int | None = None,
                        per_key_concurrency: int | None = None,
                        rate_limit: Any = None) -> QueueDescription:
        """Set the limits of ``task_queue`` to exactly these, for every worker at once (no
        restart): ``concurrency`` (running at once), ``per_key_concurrency`` (running at once
        per ``concurrency_key``), ``rate_limit=(count, period)`` (starts per sliding period).
        None removes a limit; all None removes them all. Bad values raise ``ValueError`` /
        ``TypeError`` and change nothing. Returns the queue's description."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        queue = check_queue(task_queue)
        conc = check_limit(concurrency, "concurrency")
        per_key = check_limit(per_key_concurrency, "per_key_concurrency")
        rate = check_rate_limit(rate_limit)
        ns = await self._client._namespace(ns_name)
        await ns.queues.configure(queue, conc, per_key, rate[0] if rate else None,
                                  rate[1] if rate else None)
        return (await self._describe(ns_name, [queue]))[0]

    async def describe(self, task_queue: str, namespace: str | None = None) -> QueueDescription:
        """The queue's figures (``depth``, ``running``, ``pending``, ``oldest_wait_s``) and its
        ``limits``."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        return (await self._describe(ns_name, [check_queue(task_queue)]))[0]

    async def list(self, namespace: str | None = None) -> builtins.list[QueueDescription]:
        """Every queue of the namespace with limits, tasks or live runs, by name."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        ns = await self._client._namespace(ns_name)
        return await self._describe(ns_name, await ns.queues.queues())

    async def _describe(self, ns_name: str, queues: builtins.list[str]
                        ) -> builtins.list[QueueDescription]:
        ns = await self._client._namespace(ns_name)
        return [_description(ns_name, r) for r in await ns.queues.describe(queues)]
