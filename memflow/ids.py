"""Identifiers."""

from __future__ import annotations

import uuid
from typing import Any


def guid() -> str:
    """A new unique identifier for workflow ids (not deterministic: use outside workflows)."""
    return f"H{uuid.uuid4().hex}"


def check_id(value: Any, what: str) -> str:
    """``value`` if it is a usable workflow or signal id (a non-empty string of at most 1,000
    characters), else a ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > 1000:
        raise ValueError(f"{what} is longer than 1,000 characters")
    return value


MAX_QUEUE_LENGTH = 200
PRIORITY_RANGE = (-(2**31), 2**31 - 1)


def check_priority(value: Any) -> int:
    """``value`` if it is a usable priority (an int; higher runs first), else ``TypeError`` /
    ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an int, not {type(value).__name__}")
    if not PRIORITY_RANGE[0] <= value <= PRIORITY_RANGE[1]:
        raise ValueError(f"priority {value} is out of range (a 32-bit int)")
    return value


def check_concurrency_key(value: Any) -> str | None:
    """``value`` if it is None or a usable concurrency key (a non-empty string of at most
    1,000 characters), else ``TypeError`` / ``ValueError``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"concurrency_key must be a string or None, not {type(value).__name__}")
    return check_id(value, "concurrency_key")


def check_queue(value: Any, what: str = "task_queue") -> str:
    """``value`` if it is a usable task queue name — a non-empty string of at most 200
    printable characters — else a ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > MAX_QUEUE_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_QUEUE_LENGTH} characters")
    if not value.isprintable():
        raise ValueError(f"{what} {value!r} holds non-printable characters")
    return value


def function_name(workflow_name: Any, what: str = "workflow_name") -> str:
    """The registered name a workflow is called by: the string itself, or a function's
    ``__name__``."""
    if isinstance(workflow_name, str) and workflow_name:
        return workflow_name
    name = getattr(workflow_name, "__name__", None)
    if not name:
        raise ValueError(f"{what} is required: a function or its name")
    return str(name)
