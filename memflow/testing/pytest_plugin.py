"""pytest plugin (entry point ``pytest11``): the fixtures ``memflow_env`` and
``memflow_local_env``, each a fresh ``WorkflowEnvironment`` dropped after the test.

They run on the database of the fixture ``memflow_connection`` (default ``None``:
``MEMFLOW_DATABASE_URL``, else the embedded Postgres); override it in a conftest to choose
another. The fixtures need pytest-asyncio (auto or strict mode). Nothing is imported from
MemFlow until a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from memflow.testing import WorkflowEnvironment

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]


@pytest.fixture
def memflow_connection() -> Any:
    """The database the environments use: ``None`` means ``MEMFLOW_DATABASE_URL`` or the
    embedded Postgres; override this fixture to give a DSN."""
    return None


if pytest_asyncio is not None:
    @pytest_asyncio.fixture
    async def memflow_env(memflow_connection: Any) -> AsyncIterator[WorkflowEnvironment]:
        """A time-skipping ``WorkflowEnvironment`` on a fresh namespace."""
        from memflow.testing import WorkflowEnvironment

        async with await WorkflowEnvironment.start_time_skipping(memflow_connection) as env:
            yield env

    @pytest_asyncio.fixture
    async def memflow_local_env(memflow_connection: Any) -> AsyncIterator[WorkflowEnvironment]:
        """A real-time ``WorkflowEnvironment`` on a fresh namespace."""
        from memflow.testing import WorkflowEnvironment

        async with await WorkflowEnvironment.start_local(memflow_connection) as env:
            yield env
else:  # pragma: no cover - exercised only without pytest-asyncio
    @pytest.fixture
    def memflow_env() -> None:
        """Unavailable: needs pytest-asyncio."""
        pytest.fail("the memflow_env fixture needs pytest-asyncio (pip install pytest-asyncio)")

    @pytest.fixture
    def memflow_local_env() -> None:
        """Unavailable: needs pytest-asyncio."""
        pytest.fail("the memflow_local_env fixture needs pytest-asyncio "
                    "(pip install pytest-asyncio)")
