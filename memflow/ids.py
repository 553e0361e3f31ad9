"""Identifiers."""

from __future__ import annotations

import uuid


def guid() -> str:
    """A new unique identifier for workflow ids (not deterministic: use outside workflows)."""
    return f"H{uuid.uuid4().hex}"
