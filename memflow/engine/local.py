"""Activities a pass schedules for its own worker: leased to it at once, within its slots."""

from __future__ import annotations

from collections.abc import Callable

from memflow.commands import ActivityCall, Command, LocalLease


def lease_local(commands: list[Command], local_queues: frozenset[str], lease: LocalLease,
                reserve: Callable[[int, int], int] | None) -> tuple[list[Command], int]:
    """The commands, with activities on a queue of ``local_queues`` (served by this worker)
    leased to it — as many as ``reserve`` grants (the worker's free slots, plus the slot of
    the task the pass runs under: its own, or the activity's whose result resumed it, which
    frees when the pass ends); the others wait in the queue for any worker. Returns them and
    how many were leased (all but one of them reserved, to give back once spawned)."""
    wanted = sum(1 for c in commands
                 if isinstance(c, ActivityCall) and c.task_queue in local_queues)
    if not wanted:
        return commands, 0
    promised = reserve(wanted, 1) if reserve is not None else wanted
    out: list[Command] = []
    left = promised
    for c in commands:
        if left and isinstance(c, ActivityCall) and c.task_queue in local_queues:
            c = c.leased(lease)
            left -= 1
        out.append(c)
    return out, promised
