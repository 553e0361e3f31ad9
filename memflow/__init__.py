"""MemFlow for Python: durable workflows backed by PostgreSQL alone.

The public API (see the README): ``MemFlow``, ``Client``, ``Connection``, ``Worker``,
``WorkflowHandle``, ``workflow``, ``Entity``, ``Search``, ``guid``, ``did_interrupt``,
``register_activity_worker``, ``Postgres``, ``RetryPolicy``.
"""

from memflow import activity, workflow
from memflow.client import Client
from memflow.connection import Connection, Postgres
from memflow.entity import Entity
from memflow.errors import did_interrupt
from memflow.handle import WorkflowHandle
from memflow.ids import guid
from memflow.lifecycle import shutdown
from memflow.registry import (
    clear_interceptors,
    register_activity_interceptor,
    register_interceptor,
)
from memflow.retry import RetryPolicy
from memflow.updates import WorkflowUpdateHandle
from memflow.worker import Worker, register_activity_worker
from memflow.workflow.search import Search


class MemFlow:
    """The seed system's facade: the same API as class attributes."""

    Client = Client
    Connection = Connection
    Handle = WorkflowHandle
    Worker = Worker
    workflow = workflow
    did_interrupt = staticmethod(did_interrupt)
    guid = staticmethod(guid)
    register_activity_worker = staticmethod(register_activity_worker)
    register_interceptor = staticmethod(register_interceptor)
    register_activity_interceptor = staticmethod(register_activity_interceptor)
    clear_interceptors = staticmethod(clear_interceptors)
    shutdown = staticmethod(shutdown)


__all__ = [
    "Client", "Connection", "Entity", "MemFlow", "Postgres", "RetryPolicy", "Search", "Worker",
    "WorkflowHandle", "WorkflowUpdateHandle", "activity", "clear_interceptors", "did_interrupt",
    "guid", "register_activity_interceptor", "register_activity_worker", "register_interceptor",
    "shutdown", "workflow",
]
