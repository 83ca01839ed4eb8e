"""Shared fixtures: a private real Redis, SQL stores (SQLite and the machine's PostgreSQL), ports.

Tests never touch the developer's data/ folder: CC_DATA_DIR points at a temporary folder.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="cc-tests-"))
os.environ.setdefault("CC_DATA_DIR", str(_TMP / "data"))
os.environ.setdefault("CC_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.pop("REDIS_URL", None)
os.environ.pop("DATABASE_URL", None)

from spine.servers.embedded_redis import EmbeddedRedis  # noqa: E402
from spine.servers.managed import free_port  # noqa: E402

PG_URL = os.environ.get("CC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A private Redis for the whole run (the same binary the embedded demo uses)."""
    server = EmbeddedRedis(_TMP / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True, scope="module")
def _stop_frame_listeners() -> Iterator[None]:
    """A web app's frame listener outlives its test; stopped per module, before the Redis it
    listens to goes away, so it does not log reconnect attempts through the rest of the run."""
    yield
    from dashboard.video import stop_notifiers

    stop_notifiers()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    """Each SQL test runs on SQLite and on the PostgreSQL server of this machine."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    if not _pg_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 in CI")
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    import sqlalchemy

    from dashboard.store import Base

    engine = sqlalchemy.create_engine(PG_URL)
    Base.metadata.drop_all(engine)
    engine.dispose()
    yield PG_URL
    engine = sqlalchemy.create_engine(PG_URL)
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def port() -> int:
    return free_port()
