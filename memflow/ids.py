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
