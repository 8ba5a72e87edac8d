"""The SQLite writer's own transaction: committed before it is acknowledged, rolled back
when refused, and the only writer of its datastore."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import ConnectionUnavailableError

from caxton.domain.events import AgentStopped
from caxton.shell.store import AppendRejected, EventLog, Pending


def stopped(agent: str) -> Pending:
    return Pending(AgentStopped(agent=agent), at=0)


def other_connection(path: str) -> sqlite3.Connection:
    """Another process's view of the file; it does not wait for locks."""
    return sqlite3.connect(path, isolation_level=None, timeout=0)


async def test_an_append_is_acknowledged_only_once_another_connection_sees_it(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "caxton.db")
    log = await EventLog.open(path)
    other = other_connection(path)
    try:
        written = await log.append([stopped("a"), stopped("b")])

        rows = other.execute("SELECT rowid, originator_id FROM stored_events ORDER BY rowid")
        assert list(rows) == [(r.position, r.stream) for r in written]
    finally:
        other.close()
        await log.close()


async def test_a_refused_batch_leaves_no_transaction_and_no_write_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "caxton.db")
    first = await EventLog.open(path)
    second = await EventLog.open(path)  # breaks the single-writer rule on purpose
    other = other_connection(path)
    try:
        await second.append([stopped("a")])  # the second now knows a's last version: 1
        await first.append([stopped("a")])
        with pytest.raises(AppendRejected):
            await second.append([stopped("b"), stopped("a")])  # version 2 of agent:a exists

        other.execute("BEGIN IMMEDIATE")  # would raise 'database is locked' if still held
        other.execute("ROLLBACK")
        assert other.execute("SELECT COUNT(*) FROM stored_events").fetchone() == (2,)
        [retried] = await second.append([stopped("b")])
        assert retried.position == 3
    finally:
        other.close()
        await second.close()
        await first.close()


async def test_no_other_write_goes_through_the_datastore_until_the_log_closes(
    tmp_path: Path,
) -> None:
    log = await EventLog.open(str(tmp_path / "caxton.db"))
    pool = log._backend._datastore.pool  # type: ignore[attr-defined]
    try:
        await log.append([stopped("a")])
        with pytest.raises(ConnectionUnavailableError):
            pool.get_connection(timeout=0, is_writer=True)
    finally:
        await log.close()
