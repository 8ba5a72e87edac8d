"""A full disk under the SQLite log: a refused append commits nothing, room again is
enough for the log to take appends (no reopen), and a failing checkpoint is logged once."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from caxton.shell.store import EventLog, StoreUnavailable
from caxton.shell.store.checkpoint import WalCheckpointer
from tests.disk import fill, sent, small_disk


async def test_an_append_refused_for_a_full_disk_commits_nothing_and_room_is_enough_to_go_on(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        path = str(disk / "events.db")
        log = await EventLog.open(path)
        try:
            acknowledged = await log.append(sent(10, pad=1000))
            # room for a few WAL frames of the next batch, not for its commit frame
            filler = fill(disk, leave=32 << 10)
            with pytest.raises(StoreUnavailable, match="disk is full"):
                await log.append(sent(100, pad=4000, start=10))
            assert log.fault is not None and "SQLITE_FULL" in str(log.fault)
            with pytest.raises(StoreUnavailable, match="disk is full"):
                await log.append(sent(100, pad=4000, start=10))

            filler.unlink()
            acknowledged += await log.append(sent(100, pad=4000, start=10))
            assert log.fault is None
            assert [r.position for r in acknowledged] == list(range(1, 111))
            await log.check_integrity()
        finally:
            await log.close()

        again = await EventLog.open(path)  # as the next start reads it
        try:
            assert await again.read() == acknowledged
            await again.check_integrity()
        finally:
            await again.close()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def test_a_checkpoint_failing_on_a_full_disk_is_logged_once_and_tried_less_often(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        path = str(disk / "events.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("CREATE TABLE t (x BLOB)")
        with db:  # one transaction: about 100 pages in the WAL
            db.execute("BEGIN")
            db.executemany("INSERT INTO t VALUES (randomblob(?))", [(1000,)] * 400)
        filler = fill(disk)  # the WAL holds the rows; the database file cannot grow for them
        checkpointer = WalCheckpointer(path, interval=0.005, max_interval=0.04)
        caplog.set_level(logging.WARNING, logger="caxton.store")
        checkpointer.start()
        try:
            for _ in range(30):
                # bounded: a checkpoint that never fails fails the test instead of hanging it
                assert await asyncio.to_thread(checkpointer.failed.wait, 60)
                checkpointer.failed.clear()
            said = [r.getMessage() for r in caplog.records]
            assert len(said) == 1, said
            assert "full" in said[0] and "less often" in said[0]
            assert checkpointer._next_wait() == 0.04  # capped

            filler.unlink()
            checkpointer.ran.clear()
            assert await asyncio.to_thread(checkpointer.ran.wait, 60)
            said = [r.getMessage() for r in caplog.records]
            assert len(said) == 2 and "works again" in said[1], said
            assert checkpointer._next_wait() == 0.005
        finally:
            checkpointer.stop()
            db.close()
