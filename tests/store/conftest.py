"""Fixtures of the event log's contract suite: one store per backend, and raw access to it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from caxton.domain.events import Recorded
from caxton.shell.store import EventLog

POSTGRES_URL = os.environ.get("CAXTON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_answers: list[str] = []  # memo of the first probe: "" when PostgreSQL answered


def _require_postgres() -> None:
    """Skips (or fails, under CAXTON_REQUIRE_POSTGRES=1) when PostgreSQL does not answer."""
    if not _answers:
        try:
            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
            _answers.append("")
        except psycopg.Error as e:
            _answers.append(f"PostgreSQL does not answer at {POSTGRES_URL}: {e}".strip())
    if _answers[0]:
        if os.environ.get("CAXTON_REQUIRE_POSTGRES") == "1":
            pytest.fail(_answers[0] + " (and CAXTON_REQUIRE_POSTGRES=1)")
        pytest.skip(_answers[0])


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """The store URL of a fresh schema of the test database (a shared log's, say),
    dropped afterwards; skips when PostgreSQL does not answer."""
    _require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class RawDatabase:
    """Direct SQL on a store, past the event log, as an intruder or a bug would write."""

    def __init__(self, kind: str, target: str, schema: str = "") -> None:
        self.kind = kind
        self._target = target
        self._schema = schema

    @property
    def table(self) -> str:
        return f'"{self._schema}".stored_events' if self.kind == "postgresql" else "stored_events"

    @property
    def position(self) -> str:
        return "notification_id" if self.kind == "postgresql" else "rowid"

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Runs one statement in its own transaction; returns the rows it gives."""
        if self.kind == "postgresql":
            with psycopg.connect(self._target, autocommit=True) as conn:
                cursor = conn.execute(sql.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        db = sqlite3.connect(self._target, isolation_level=None)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def insert(
        self, stream: str, version: int, topic: str, state: bytes, *, position: int = 0
    ) -> None:
        """Appends a row by hand; `position` 0 lets the database choose it."""
        if position:
            self.execute(
                f"INSERT INTO {self.table} ({self.position}, originator_id, originator_version,"
                " topic, state) VALUES (?, ?, ?, ?, ?)",
                (position, stream, version, topic, state),
            )
        else:
            self.execute(
                f"INSERT INTO {self.table} (originator_id, originator_version, topic, state)"
                " VALUES (?, ?, ?, ?)",
                (stream, version, topic, state),
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, RawDatabase]]:
    """A store location (file path or URL) for each backend, and raw access to it."""
    if request.param == "sqlite":
        path = str(tmp_path / "caxton.db")
        yield path, RawDatabase("sqlite", path)
        return
    _require_postgres()
    schema = f"caxton_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}", RawDatabase("postgresql", POSTGRES_URL, schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def store(backend: tuple[str, RawDatabase]) -> str:
    return backend[0]


@pytest.fixture
def raw(backend: tuple[str, RawDatabase]) -> RawDatabase:
    return backend[1]


async def stop(following: AsyncIterator[Recorded]) -> None:
    """Ends a `follow()` iterator (an async generator underneath)."""
    await cast(AsyncGenerator[Recorded, None], following).aclose()


@pytest.fixture
async def log(store: str) -> AsyncIterator[EventLog]:
    opened = await EventLog.open(store)
    yield opened
    await opened.close()
