"""``Entity``: the class of ``await workflow.entity()`` and the queries over entities.

Inside a workflow, ``e = await workflow.entity()`` gives an ``Entity`` whose methods are
durable steps (see ``EntityMethods``). Outside, the static methods find workflows by the type
name given at start (``entity=``) and by the content of their entity. One class serves both
sides, so it lives here, below the public API (``memflow.entity`` re-exports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from memflow import payload
from memflow.engine.thread import current_thread
from memflow.store import NamespaceStore, validate_namespace
from memflow.store.entity import field_path
from memflow.workflow.entity import EntityMethods

if TYPE_CHECKING:
    from memflow.client import Client

_OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"}
_SQL_OPS = {"=": "$eq", "!=": "$ne", ">": "$gt", "<": "$lt", ">=": "$gte", "<=": "$lte",
            "LIKE": "$like", "IN": "$in"}


class Entity(EntityMethods):
    """A workflow's entity (inside a workflow) and the static entity queries.

    Static queries take the entity type name, a ``Client`` and ``namespace=`` (default: the
    client's namespace, ``"memflow"`` unless set). Each result is a dict
    ``{"workflow_id", "context", "status"}``: the run's id, its entity document and its status
    (``"running"``, ``"completed"``, ``"failed"``, ``"interrupted"`` or ``"pending"``).
    """

    def __repr__(self) -> str:
        return "Entity()"

    @staticmethod
    async def find(entity: str, conditions: dict[str, Any] | None, client: Client,
                   limit: int | None = None, offset: int = 0,
                   namespace: str | None = None) -> list[dict[str, Any]]:
        """Workflows of type ``entity`` whose entity matches every condition, oldest first.

        ``conditions`` maps a dot path to a value (equality) or to operators:
        ``{"age": {"$gte": 18, "$lt": 65}, "plan": {"$in": ["pro", "team"]}, "city": "Oslo"}``.
        Equality compares JSON values (numbers as numbers); ``$gt``/``$gte``/``$lt``/``$lte``
        take a number or a string and match values of the same JSON type; ``$ne`` also
        matches a missing value; ``$in`` takes a list.
        """
        kind = _entity_type(entity)
        parsed = _conditions(conditions)
        ns = await _store(client, namespace)
        return await ns.entity.find_entities(kind, parsed, _limit(limit), _offset(offset))

    @staticmethod
    async def find_by_id(entity: str, id: str, client: Client,
                         namespace: str | None = None) -> dict[str, Any] | None:
        """The workflow ``id`` if it is of type ``entity``, else ``None``."""
        kind = _entity_type(entity)
        if not isinstance(id, str) or not id:
            raise ValueError("id must be a non-empty string (a workflow id)")
        ns = await _store(client, namespace)
        return await ns.entity.find_entity_by_id(kind, id)

    @staticmethod
    async def find_by_condition(entity: str, field: str, value: Any, op: str, client: Client,
                                limit: int | None = None, offset: int = 0,
                                namespace: str | None = None) -> list[dict[str, Any]]:
        """Workflows of type ``entity`` whose value at ``field`` satisfies ``op value``.

        ``op`` is one of ``= != > < >= <= LIKE IN`` (``LIKE`` matches the value's text with a
        string pattern; ``IN`` takes a list).
        """
        kind = _entity_type(entity)
        if not isinstance(op, str) or op.upper() not in _SQL_OPS:
            raise ValueError(f"invalid operator {op!r}: use one of {', '.join(_SQL_OPS)}")
        mapped = _SQL_OPS[op.upper()]
        field_path(field)
        ns = await _store(client, namespace)
        return await ns.entity.find_entities(kind, [_condition(field, mapped, value)],
                                      _limit(limit), _offset(offset))

    @staticmethod
    async def create_index(entity: str, field: str, client: Client,
                           namespace: str | None = None) -> str:
        """Index the entity value at ``field`` (a GIN index serving equality lookups by
        ``find``); returns the index name. Idempotent. One index per field serves every
        entity type of the namespace."""
        _entity_type(entity)
        field_path(field)
        ns = await _store(client, namespace)
        return await ns.entity.create_entity_index(field)


def _entity_type(entity: Any) -> str:
    if not isinstance(entity, str) or not entity:
        raise ValueError("entity must be a non-empty string (the entity type name)")
    return entity


def _limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative int, not {limit!r}")
    return limit


def _offset(offset: Any) -> int:
    if offset is None:
        return 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative int, not {offset!r}")
    return offset


def _conditions(conditions: Any) -> list[tuple[str, str, str]]:
    if conditions is None:
        return []
    if not isinstance(conditions, dict):
        raise TypeError("conditions must be a dict like {'age': {'$gte': 18}}")
    out = []
    for field, spec in conditions.items():
        field_path(field)
        if isinstance(spec, dict) and any(isinstance(k, str) and k.startswith("$")
                                          for k in spec):
            for op, value in spec.items():
                if op not in _OPERATORS:
                    raise ValueError(f"unknown operator {op!r} for {field!r}: use one of "
                                     f"{', '.join(sorted(_OPERATORS))}")
                out.append(_condition(field, op, value))
        else:
            out.append(_condition(field, "$eq", spec))
    return out


def _condition(field: str, op: str, value: Any) -> tuple[str, str, str]:
    what = f"condition {op} on {field!r}"
    if op in ("$gt", "$gte", "$lt", "$lte") and (
            isinstance(value, bool) or not isinstance(value, int | float | str)):
        raise TypeError(f"{what}: the value must be a number or a string")
    if op == "$in" and not isinstance(value, list | tuple):
        raise TypeError(f"{what}: the value must be a list")
    if op == "$like":
        if not isinstance(value, str):
            raise TypeError(f"{what}: the pattern must be a string")
        payload.dumps(value, what)
        return field, op, value
    return field, op, payload.dumps(value, what)


@runtime_checkable
class _NamespaceSource(Protocol):
    """What the static queries need of a ``memflow.Client``: its namespaces' stores."""

    namespace: str

    async def _namespace(self, name: str) -> NamespaceStore: ...


async def _store(client: Any, namespace: str | None) -> NamespaceStore:
    if not isinstance(client, _NamespaceSource):
        raise TypeError(f"client must be a memflow Client, not {type(client).__name__}")
    ns_name = validate_namespace(namespace or client.namespace)
    return await client._namespace(ns_name)


async def entity() -> Entity:
    """The running workflow's entity. Consumes no step: only its methods are durable calls.

    Hook threads of a workflow share its entity.
    """
    current_thread("workflow.entity()")
    return Entity()
