"""One namespace's store: the gate the engine holds, made of one part per concern."""

from __future__ import annotations

from memflow.store.admin import AdminQueries
from memflow.store.base import Store
from memflow.store.control import ControlQueries
from memflow.store.entity import EntityQueries
from memflow.store.flow import FlowQueries
from memflow.store.history import HistoryQueries
from memflow.store.messages import MessageQueries
from memflow.store.observe import ObserveQueries
from memflow.store.passes import PassQueries
from memflow.store.poison import PoisonQueries
from memflow.store.queries import QueryRequests
from memflow.store.schedules import ScheduleQueries
from memflow.store.scope import Scope
from memflow.store.search import SearchQueries
from memflow.store.sql_search import SqlSearchQueries
from memflow.store.tasks import TaskQueries
from memflow.store.updates import UpdateQueries
from memflow.store.workflows import WorkflowQueries


class NamespaceStore:
    """The statements of one namespace (schema) on a shared :class:`Store`, by concern:

    ``workflows`` (runs: start, read, finish, interrupt), ``tasks`` (the queue and its leases),
    ``passes`` (a thread's history and the commit of a pass), ``messages`` (signals, hooks and
    events from outside), ``updates`` and ``queries`` (message passing), ``entity``,
    ``search``, ``sql_search``, ``schedules``, ``poison`` (tasks parked after repeated
    crashes), ``observe``, ``admin`` (counts, pruning), ``history`` (a run's recorded
    steps, for ``fetch_history``), ``control`` (cancellation, workflow timeouts) and
    ``queues`` (flow control: queue limits and figures)."""

    def __init__(self, store: Store, namespace: str):
        self.scope = Scope(store, namespace)
        self.store = store
        self.namespace = self.scope.namespace
        self.sql = self.scope.sql
        self.workflows = WorkflowQueries(self.scope)
        self.tasks = TaskQueries(self.scope)
        self.passes = PassQueries(self.scope)
        self.messages = MessageQueries(self.scope)
        self.updates = UpdateQueries(self.scope)
        self.queries = QueryRequests(self.scope)
        self.entity = EntityQueries(self.scope)
        self.search = SearchQueries(self.scope)
        self.sql_search = SqlSearchQueries(self.scope)
        self.schedules = ScheduleQueries(self.scope)
        self.poison = PoisonQueries(self.scope)
        self.observe = ObserveQueries(self.scope)
        self.admin = AdminQueries(self.scope)
        self.history = HistoryQueries(self.scope)
        self.control = ControlQueries(self.scope)
        self.queues = FlowQueries(self.scope)

    @classmethod
    async def open(cls, store: Store, namespace: str) -> NamespaceStore:
        """The namespace's store, its tables created or upgraded first."""
        ns = cls(store, namespace)
        await store.migrate(ns.namespace)
        return ns
