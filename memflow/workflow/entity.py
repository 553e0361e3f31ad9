"""``await workflow.entity()``: the workflow's durable JSON memory, one step per call.

Each method validates its arguments where it is called, takes the next counter slot at call
time and returns an awaitable settled by one atomic statement (see ``memflow.store.entity``),
or by the recorded result on replay.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from memflow import payload
from memflow.commands import EntityCall, EntityOp, EntityOpName
from memflow.engine.thread import current_thread

MAX_PATH_SEGMENTS = 256


def parse_path(path: Any, what: str) -> list[str]:
    """The segments of a dot path; every segment must be non-empty text.

    A segment is a key of an object, or an index (``0``, ``-1``) of an array on the way.
    """
    if not isinstance(path, str):
        raise TypeError(f"{what}: the path must be a string like 'a.b.c', "
                        f"not {type(path).__name__}")
    segments = path.split(".")
    if not path or any(not s for s in segments):
        raise ValueError(f"{what}: invalid path {path!r}: use non-empty names separated by dots")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise ValueError(f"{what}: the path has more than {MAX_PATH_SEGMENTS} segments")
    payload.dumps(path, f"{what}: the path")
    return segments


def decimal_text(value: Any, what: str) -> str:
    """A finite int or float as exact decimal text for SQL ``numeric``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value}")
    return repr(value) if isinstance(value, float) else str(value)


def merge_tree(patch: dict[str, Any], what: str) -> tuple[dict[str, Any], int]:
    """The objects of a merge patch as a tree for ``memflow.store.entity``, and its depth.

    Each object becomes ``{"i": id, "k": its key in the parent, "l": its keys whose values are
    not objects, "c": its child objects}``.
    """
    root: dict[str, Any] = {"i": 0, "k": None, "c": []}
    count = 1
    depth = 0
    stack: list[tuple[dict[str, Any], dict[str, Any], int]] = [(patch, root, 0)]
    while stack:
        node, out, level = stack.pop()
        if level > MAX_PATH_SEGMENTS:
            raise ValueError(f"{what}: the value nests objects more than {MAX_PATH_SEGMENTS} "
                             "levels deep; use set() for deeper documents")
        depth = max(depth, level)
        out["l"] = {k: v for k, v in node.items() if not isinstance(v, dict)}
        for key, value in node.items():
            if isinstance(value, dict):
                child: dict[str, Any] = {"i": count, "k": key, "c": []}
                count += 1
                out["c"].append(child)
                stack.append((value, child, level + 1))
    return root, depth


def entity_call(op: EntityOpName, path: str | None = None, *, value: Any = None, by: Any = 1,
                index: Any = None) -> EntityOp:
    """Validate one entity call and return it as an operation (raises TypeError/ValueError).

    ``op`` is one of set, merge, get, delete, append, prepend, remove, increment, toggle,
    set_if_not_exists.
    """
    what = f"entity.{op}({path!r})" if path is not None else f"entity.{op}()"
    segments = tuple(parse_path(path, what)) if path is not None else ()
    if op in ("set", "merge"):
        if not isinstance(value, dict):
            value = payload.to_jsonable(value, f"{what}: the value")
            if not isinstance(value, dict):
                raise TypeError(f"{what}: the value must be a dict (the entity is a JSON "
                                f"object), not {type(value).__name__}")
        if op == "set":
            return EntityOp(op, what, segments,
                            value_json=payload.dumps(value, f"{what}: the value"))
        tree, depth = merge_tree(payload.to_jsonable(value, f"{what}: the value"), what)
        return EntityOp(op, what, segments, tree_json=payload.dumps(tree, f"{what}: the value"),
                        depth=depth)
    if op in ("append", "prepend", "set_if_not_exists"):
        return EntityOp(op, what, segments, value_json=payload.dumps(value, f"{what}: the value"))
    if op == "increment":
        return EntityOp(op, what, segments, by=decimal_text(by, f"{what}: by"))
    if op == "remove":
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"{what}: index must be an int, not {type(index).__name__}")
        if not -(2**31) <= index < 2**31:
            raise ValueError(f"{what}: index {index} is out of range")
        return EntityOp(op, what, segments, index=index)
    return EntityOp(op, what, segments)


def _call(operation: EntityOp) -> asyncio.Future[Any]:
    thread = current_thread(f"entity.{operation.op}()")
    return thread.call(EntityCall(thread.counter, operation))


class EntityMethods:
    """The durable methods of ``Entity``: each call is one atomic, replay-safe step.

    Paths are dot-separated (``"user.address.city"``); a segment may index an array on the way
    (``"items.0.qty"``). Updates create missing intermediate objects. A call that does not fit
    the document (incrementing a string, toggling a number, an index past the end of an array)
    raises ``MemFlowFatalError`` in the workflow and changes nothing.
    """

    def set(self, value: dict[str, Any]) -> asyncio.Future[Any]:
        """Replace the whole document with ``value``; returns the new document."""
        return _call(entity_call("set", value=value))

    def merge(self, value: dict[str, Any]) -> asyncio.Future[Any]:
        """Deep-merge ``value`` into the document (objects merge key by key, anything else
        replaces); returns the new document."""
        return _call(entity_call("merge", value=value))

    def get(self, path: str | None = None) -> asyncio.Future[Any]:
        """The value at ``path`` (the whole document without one), ``None`` if missing."""
        return _call(entity_call("get", path))

    def delete(self, path: str) -> asyncio.Future[Any]:
        """Remove the value at ``path`` (nothing if missing); returns the new document."""
        return _call(entity_call("delete", path))

    def append(self, path: str, value: Any) -> asyncio.Future[Any]:
        """Add ``value`` at the end of the array at ``path`` (created if missing); returns the
        array."""
        return _call(entity_call("append", path, value=value))

    def prepend(self, path: str, value: Any) -> asyncio.Future[Any]:
        """Add ``value`` at the start of the array at ``path`` (created if missing); returns
        the array."""
        return _call(entity_call("prepend", path, value=value))

    def remove(self, path: str, index: int) -> asyncio.Future[Any]:
        """Remove item ``index`` (negative counts from the end; past the end removes nothing)
        of the array at ``path``; returns the array."""
        return _call(entity_call("remove", path, index=index))

    def increment(self, path: str, by: int | float = 1) -> asyncio.Future[Any]:
        """Add ``by`` to the number at ``path`` (0 if missing), in exact decimal arithmetic;
        returns the new number."""
        return _call(entity_call("increment", path, by=by))

    def toggle(self, path: str) -> asyncio.Future[Any]:
        """Negate the boolean at ``path`` (a missing value becomes ``True``); returns it."""
        return _call(entity_call("toggle", path))

    def set_if_not_exists(self, path: str, value: Any) -> asyncio.Future[Any]:
        """Set ``value`` at ``path`` unless something (even ``None``) is there; returns the
        value now at the path."""
        return _call(entity_call("set_if_not_exists", path, value=value))

