"""SQLite's WAL is checkpointed by a thread of its own, never inside a commit on the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from caxton.shell.store import EventLog, Pending
from caxton.shell.store.sqlite import SQLiteBackend
from tests.samples import every_event_type


async def test_commits_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    log = await EventLog.open(str(tmp_path / "events.db"))
    try:
        await _check(log, tmp_path)
    finally:
        await log.close()
    assert not log._backend._checkpointer.running  # type: ignore[attr-defined]


async def _check(log: EventLog, tmp_path: Path) -> None:
    backend = log._backend
    assert isinstance(backend, SQLiteBackend)
    checkpointer = backend._checkpointer
    backend._cursor.execute("PRAGMA wal_autocheckpoint")
    assert tuple(backend._cursor.fetchone()) == (0,)

    events = every_event_type() * 50
    for _ in range(20):
        await log.append([Pending(event=e, at=1) for e in events])
    checkpointer.ran.clear()
    await asyncio.to_thread(checkpointer.ran.wait)  # the next checkpoint after the appends

    with sqlite3.connect(tmp_path / "events.db") as other:
        busy, in_wal, checkpointed = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, checkpointed) == (0, in_wal), "frames were left in the WAL"
