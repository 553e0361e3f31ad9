"""``await workflow.search()`` and ``workflow.enrich()``: a workflow's search fields.

Search fields are a flat map of strings kept with the run, readable from outside with
``handle.query_state`` and used by ``client.workflow.search`` to find workflows. Each method is
one durable step (an atomic statement, see ``memflow.store.search``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from memflow import payload
from memflow.commands import SearchCall, SearchOp, SearchOpName
from memflow.engine.thread import current_thread
from memflow.workflow.entity import decimal_text


def search_value(value: Any) -> str:
    """How a value is stored as a search field: text as is, anything else as its JSON."""
    return value if isinstance(value, str) else payload.dumps(value, "search value")


def search_fields(args: tuple[Any, ...], what: str) -> dict[str, str]:
    """Fields given as one dict or as alternating keys and values, with values as text."""
    if len(args) == 1 and isinstance(args[0], dict):
        pairs = list(args[0].items())
    elif args and len(args) % 2 == 0:
        pairs = list(zip(args[::2], args[1::2], strict=True))
    else:
        raise TypeError(f"{what}: give a dict, or keys and values in turn ('a', 1, 'b', 2)")
    fields = {_key(k, what): search_value(v) for k, v in pairs}
    payload.dumps(fields, what)
    return fields


def _key(key: Any, what: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{what}: a search field name must be a string, not {key!r}")
    if not key:
        raise ValueError(f"{what}: a search field name may not be empty")
    payload.dumps(key, what)
    return key


def _keys(keys: tuple[Any, ...], what: str) -> list[str]:
    if not keys:
        raise TypeError(f"{what}: give at least one field name")
    return [_key(k, what) for k in keys]


def search_call(op: SearchOpName, *args: Any) -> SearchOp:
    """Validate one search call and return it as an operation (raises TypeError/ValueError).

    ``op`` is set (a dict or keys and values in turn), get (key), mget (keys), delete (keys),
    incr (key, by) or mult (key, by).
    """
    if op == "set":
        what = "search.set()"
        return SearchOp(op, what, fields_json=payload.dumps(search_fields(args, what)))
    if op in ("mget", "delete"):
        what = f"search.{op}()"
        return SearchOp(op, what, keys=tuple(_keys(args, what)))
    if op not in ("get", "incr", "mult") or not args or len(args) > 2 or (
            op == "get" and len(args) != 1):
        raise TypeError(f"search.{op}(): wrong arguments {args!r}")
    what = f"search.{op}({args[0]!r})"
    key = _key(args[0], what)
    if op == "get":
        return SearchOp(op, what, key=key)
    if len(args) != 2:
        raise TypeError(f"{what}: give the number to apply (by)")
    return SearchOp(op, what, key=key, by=decimal_text(args[1], f"{what}: by"))


def _call(operation: SearchOp, decode: Any = None,
          name: str | None = None) -> asyncio.Future[Any]:
    thread = current_thread(operation.what)
    return thread.call(SearchCall(thread.counter, operation, name or operation.op), decode)


class Search:
    """The running workflow's search fields; every method is one durable step.

    Values are stored as strings (text as is, anything else as JSON text). A call that cannot
    apply (``incr`` of a field that holds no number) raises ``MemFlowFatalError`` in the
    workflow and changes nothing.
    """

    def __repr__(self) -> str:
        return "Search()"

    def set(self, *args: Any) -> asyncio.Future[Any]:
        """Set fields from a dict or from alternating keys and values; returns how many of
        them are new."""
        return _call(search_call("set", *args))

    def get(self, key: str) -> asyncio.Future[Any]:
        """The field's value, or ``None`` when it is not set."""
        return _call(search_call("get", key))

    def mget(self, *keys: str) -> asyncio.Future[Any]:
        """The values of several fields, in order (``None`` for each one not set)."""
        return _call(search_call("mget", *keys))

    def delete(self, *keys: str) -> asyncio.Future[Any]:
        """Remove fields; returns how many of them existed."""
        return _call(search_call("delete", *keys))

    def incr(self, key: str, by: int | float = 1) -> asyncio.Future[Any]:
        """Add ``by`` to the number in the field (0 when not set), in exact decimal
        arithmetic; stores the result as text and returns it as a number."""
        return _call(search_call("incr", key, by))

    def mult(self, key: str, by: int | float) -> asyncio.Future[Any]:
        """Multiply the number in the field (1 when not set) by ``by``, exactly (decimal
        arithmetic, not sums of logarithms); stores the product as text and returns it."""
        return _call(search_call("mult", key, by))


async def search() -> Search:
    """The running workflow's search fields. Consumes no step: only its methods do."""
    current_thread("workflow.search()")
    return Search()


def enrich(fields: dict[str, Any]) -> asyncio.Future[Any]:
    """Set search fields (one durable step); returns ``True``."""
    if not isinstance(fields, dict):
        raise TypeError("workflow.enrich(): fields must be a dict")
    operation = replace(search_call("set", fields), what="workflow.enrich()")
    return _call(operation, lambda _v: True, name="enrich")
