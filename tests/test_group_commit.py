"""Group commit: statements of one tick share a transaction, yet never each other's failure."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from memflow.store import NamespaceStore, Store
from memflow.store.batch import StatementGroup
from tests.support import sql


@pytest.fixture
async def ns(dsn: str, namespace: str) -> NamespaceStore:
    """The test namespace's store, with a scratch table."""
    store = await NamespaceStore.open(await Store.get(dsn), namespace)
    await sql(f'CREATE TABLE "{namespace}".scratch (v int)')
    return store


async def test_a_failing_statement_does_not_sink_its_group(ns: NamespaceStore,
                                                           namespace: str) -> None:
    group = StatementGroup(ns.store)
    insert = ns.sql("INSERT INTO {s}.scratch (v) VALUES (%(v)s) RETURNING v")
    refuse = ns.sql("SELECT {s}.ensure(false, 'refused')")
    results = await asyncio.gather(
        group.run(insert, {"v": 1}), group.run(refuse, {}), group.run(insert, {"v": 2}),
        return_exceptions=True)
    assert results[0] == {"v": 1} and results[2] == {"v": 2}
    assert isinstance(results[1], psycopg.Error) and results[1].sqlstate == "MF001"
    assert sorted(await sql(f'SELECT v FROM "{namespace}".scratch')) == [(1,), (2,)]


async def test_a_group_commits_together(ns: NamespaceStore, namespace: str) -> None:
    group = StatementGroup(ns.store)
    insert = ns.sql("INSERT INTO {s}.scratch (v) VALUES (%(v)s) RETURNING txid_current() AS tx")
    rows = await asyncio.gather(*[group.run(insert, {"v": i}) for i in range(20)])
    assert len({r["tx"] for r in rows}) == 1  # one transaction for the whole tick
    assert await sql(f'SELECT count(*) FROM "{namespace}".scratch') == [(20,)]
    with pytest.raises(psycopg.Error):
        await group.run(ns.sql("SELECT * FROM {s}.no_such_table"), {})
