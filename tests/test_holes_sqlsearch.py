"""The raw SQL search form is contained: it reads this namespace's workflow rows only, returns
a bounded number of rows, and cannot escape its role."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from memflow import Client
from memflow.errors import MemFlowError
from memflow.store.sql_search import MAX_ROWS, role_name
from tests.support import DSN, eventually, sql


async def _search(client: Client, text: str, *params):
    return await client.workflow.search(None, None, None, "sql", text, *params, timeout=20)


async def test_sql_search_reads_only_its_workflow_rows(client, namespace):
    other_ns = f"t_{uuid.uuid4().hex[:16]}"
    other = Client(connection=DSN, namespace=other_ns)
    try:
        await other.workflow.start(args=[], task_queue="hs", workflow_name="x",
                                   workflow_id="theirs", search={"data": {"k": "v"}})
        await client.workflow.start(args=[], task_queue="hs", workflow_name="x",
                                    workflow_id="mine", search={"data": {"k": "v"}})
        await client.workflow.signal("kept-signal", {"secret": 1})
        # the normal form still works
        assert await _search(client, "SELECT workflow_id FROM workflows WHERE search->>'k' = $1",
                             "v") == [{"workflow_id": "mine"}]
        attacks = [
            f'SELECT * FROM "{other_ns}".workflows',
            f'SELECT * FROM "{other_ns}".search_view',
            f'SELECT * FROM "{namespace}".workflows',
            f'SELECT * FROM "{namespace}".tasks',
            f'SELECT * FROM "{namespace}".signals',
            f'SELECT * FROM "{namespace}".steps',
            f'SELECT * FROM "{namespace}".threads',
            "SELECT * FROM pg_catalog.pg_authid",
            "SELECT pg_terminate_backend(pg_backend_pid())",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
            "SELECT pg_cancel_backend(pg_backend_pid())",
            "SELECT pg_read_file('/etc/passwd')",
            "SELECT pg_read_binary_file('/etc/passwd')",
            "SELECT pg_ls_dir('.')",
            "SELECT lo_import('/etc/passwd')",
            "SELECT set_config('role', 'none', true), query_to_xml("
            f"'SELECT * FROM \"{namespace}\".signals', true, true, '')",
            "SELECT set_config('session_authorization', current_user, true)",
            "SELECT 1; SELECT * FROM pg_authid",
            "SELECT query_to_xml('DELETE FROM workflows RETURNING 1', true, true, '')",
        ]
        for attack in attacks:
            with pytest.raises(ValueError, match="search SQL failed"):
                await _search(client, attack)
        # nothing was touched, and this process's connections still work
        assert len(await sql(f'SELECT 1 FROM "{namespace}".signals')) == 1
        assert len(await sql(f'SELECT 1 FROM "{namespace}".workflows')) == 1
        assert await _search(client, "SELECT count(*) AS n FROM workflows") == [{"n": 1}]
    finally:
        await other.close()
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{other_ns}" CASCADE')
            await conn.execute(f'DROP ROLE IF EXISTS "{role_name(conn.info.dbname, other_ns)}"')


async def test_a_search_whose_connection_dies_is_not_retried(client, namespace):
    marker = f'"{namespace}".search_exec'
    search = asyncio.ensure_future(_search(client, "SELECT pg_sleep(20)"))

    async def kill() -> bool:
        rows = await sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE query LIKE %s AND pid <> pg_backend_pid()", f"%{marker}%")
        return bool(rows)
    await eventually(kill, timeout=10)
    with pytest.raises(ConnectionError, match="not retried"):
        await asyncio.wait_for(search, 10)  # not an hour of reconnecting


async def test_sql_search_rows_are_bounded(client):
    rows = await _search(client, "SELECT g FROM generate_series(1, $1) g", MAX_ROWS)
    assert len(rows) == MAX_ROWS and rows[-1] == {"g": MAX_ROWS}
    with pytest.raises(ValueError, match="more than 10,000 rows"):
        await _search(client, "SELECT g FROM generate_series(1, $1) g", MAX_ROWS + 1)


async def test_sql_search_needs_its_role(namespace):
    login = f"mf_plain_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        db = conn.info.dbname
        await conn.execute(f'CREATE ROLE "{login}" LOGIN')
        await conn.execute(f'GRANT CREATE ON DATABASE "{db}" TO "{login}"')
    try:
        plain_dsn = psycopg.conninfo.make_conninfo(DSN, user=login)
        client = Client(connection=plain_dsn, namespace=namespace)
        await client.workflow.start(args=[], task_queue="hs", workflow_name="x")
        with pytest.raises(MemFlowError, match=r"confined role .* could not create"):
            await _search(client, "SELECT workflow_id FROM workflows")
        await client.close()
    finally:
        import memflow

        await memflow.shutdown()
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
            await conn.execute(f'REVOKE CREATE ON DATABASE "{db}" FROM "{login}"')
            await conn.execute(f'DROP ROLE IF EXISTS "{login}"')
