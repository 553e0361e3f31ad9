"""What every part of a namespace's store shares: the pooled store and the schema to fill in."""

from __future__ import annotations

from memflow.store.base import Store, schema_sql, validate_namespace


class Scope:
    """One namespace on a shared :class:`Store`, with its statements' schema filled in once."""

    def __init__(self, store: Store, namespace: str):
        self.store = store
        self.namespace = validate_namespace(namespace)
        self._filled: dict[str, str] = {}

    def sql(self, template: str) -> str:
        """``template`` with this namespace's quoted schema in place of ``{s}`` (cached)."""
        sql = self._filled.get(template)
        if sql is None:
            sql = self._filled[template] = schema_sql(template, self.namespace)
        return sql


class Part:
    """A group of statements about one concern, run in one namespace's scope."""

    def __init__(self, scope: Scope):
        self.scope = scope
        self.store = scope.store
        self.namespace = scope.namespace
        self.sql = scope.sql
