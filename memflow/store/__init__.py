"""The storage package: the only place in MemFlow that speaks SQL."""

from memflow.store.base import Store, validate_namespace
from memflow.store.commands import Thread
from memflow.store.fragments import start_params
from memflow.store.namespace import NamespaceStore
from memflow.store.passes import PassOutcome
from memflow.store.tasks import Task

__all__ = ["NamespaceStore", "PassOutcome", "Store", "Task", "Thread", "start_params",
           "validate_namespace"]
