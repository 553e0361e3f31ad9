"""Shared fixtures: a real Postgres, one fresh namespace (schema) per test, clean shutdown."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

import memflow
from memflow import registry
from memflow.store.sql_search import role_name
from tests.support import DSN

# the kit's fixtures (memflow_env, memflow_local_env) even where the entry point is not installed
pytest_plugins = ["memflow.testing.pytest_plugin"]


@pytest.fixture
def dsn() -> str:
    """The test database's DSN."""
    return DSN


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A fresh namespace for this test; its schema is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    await memflow.shutdown()
    registry.clear_interceptors()
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        # the SQL search form's role is cluster-wide: drop it with its namespace
        role = role_name(conn.info.dbname, name)
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
async def client(dsn: str, namespace: str) -> memflow.Client:
    """A client bound to the test's namespace."""
    return memflow.Client(connection=dsn, namespace=namespace)
