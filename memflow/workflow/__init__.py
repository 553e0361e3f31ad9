"""What workflow functions call: ``from memflow import workflow``.

Every durable call takes the next slot of the workflow's deterministic counter when it is
called, and settles from the workflow's history on replay.
"""

from memflow.errors import did_interrupt
from memflow.workflow.activities import proxy_activities
from memflow.workflow.calls import (
    all,
    exec_child,
    execute_child,
    signal,
    sleep_for,
    start_child,
    wait_for,
)
from memflow.workflow.clock import guid, now
from memflow.workflow.context import WorkflowContext, get_context, random
from memflow.workflow.continuation import continue_as_new
from memflow.workflow.entity_class import entity
from memflow.workflow.events import emit, interrupt, trace
from memflow.workflow.hooks import exec_hook, exec_hook_batch, hook
from memflow.workflow.info import WorkflowInfo, info
from memflow.workflow.log import logger
from memflow.workflow.messages import on_query, on_update, wait_condition
from memflow.workflow.patching import deprecate_patch, patched
from memflow.workflow.search import enrich, search

__all__ = [
    "WorkflowContext", "WorkflowInfo", "all", "continue_as_new", "deprecate_patch",
    "did_interrupt", "emit", "enrich", "entity", "exec_child", "exec_hook", "exec_hook_batch",
    "execute_child", "get_context", "guid", "hook", "info", "interrupt", "logger", "now",
    "on_query", "on_update", "patched", "proxy_activities", "random", "search", "signal",
    "sleep_for", "start_child", "trace", "wait_condition", "wait_for",
]
