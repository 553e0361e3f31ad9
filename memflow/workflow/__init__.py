"""What workflow functions call: ``from memflow import workflow``.

Every durable call takes the next slot of the workflow's deterministic counter when it is
called, and settles from the workflow's history on replay.
"""

from memflow.errors import did_interrupt
from memflow.ids import guid
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
from memflow.workflow.context import WorkflowContext, get_context, random

__all__ = [
    "WorkflowContext", "all", "did_interrupt", "exec_child", "execute_child", "get_context",
    "guid", "proxy_activities", "random", "signal", "sleep_for", "start_child", "wait_for",
]
