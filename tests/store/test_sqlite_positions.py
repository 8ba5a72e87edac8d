"""The SQLite writer numbers a batch from one `executemany`: its rows take the rowids
last - n + 1 .. last, which another connection reads; a batch for which that is not
so is refused, and nothing of it committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from caxton.domain.events import AgentStopped, Recorded
from caxton.shell.store import AppendRejected, EventLog, LogCorrupted, Pending

HIGHEST_ROWID = 2**63 - 1


def stopped(*agents: str) -> list[Pending]:
    return [Pending(AgentStopped(agent=a), at=0) for a in agents]


def other_connection(path: str) -> sqlite3.Connection:
    """Another process writing to the file, past the log."""
    return sqlite3.connect(path, isolation_level=None, timeout=0)


def stored(agent: str) -> bytes:
    return orjson.dumps({"v": 1, "at": 0, "tp": "", "d": {"agent": agent}})


def rows(other: sqlite3.Connection) -> list[tuple[int, str, int]]:
    query = "SELECT rowid, originator_id, originator_version FROM stored_events ORDER BY rowid"
    return list(other.execute(query))


def seen(records: list[Recorded]) -> list[tuple[int, str, int]]:
    return [(r.position, r.stream, r.version) for r in records]


async def test_each_batch_takes_the_rowids_another_connection_reads_after_refusals_and_intruders(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "caxton.db")
    log = await EventLog.open(path)
    other = other_connection(path)
    try:
        written = await log.append(stopped("a", "b", "c"))
        other.execute(  # another writer takes rowid 4, and version 2 of agent:a
            "INSERT INTO stored_events VALUES (?, ?, ?, ?)",
            ("agent:a", 2, "AgentStopped", stored("a")),
        )
        with pytest.raises(AppendRejected):  # a's version 2 is taken: two rows rolled back
            await log.append(stopped("b", "c", "a", "d", "e"))
        written += await log.append(stopped("f", "g"))
        written += await log.append(stopped("a", "h", "i", "j"))

        assert [r.position for r in written] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
        assert rows(other) == sorted([*seen(written), (4, "agent:a", 2)])
        assert (written[5].stream, written[5].version) == ("agent:a", 3)
    finally:
        other.close()
        await log.close()


async def test_a_batch_whose_rowids_sqlite_chose_at_random_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "caxton.db")
    log = await EventLog.open(path)
    other = other_connection(path)
    try:
        await log.append(stopped("a"))
        # past the highest rowid, SQLite picks unused ones at random
        other.execute(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state)"
            " VALUES (?, ?, ?, ?, ?)",
            (HIGHEST_ROWID, "agent:z", 1, "AgentStopped", stored("z")),
        )

        with pytest.raises(LogCorrupted, match=r"below the highest.*nothing was committed"):
            await log.append(stopped("b", "c"))

        assert [stream for _, stream, _ in rows(other)] == ["agent:a", "agent:z"]
    finally:
        other.close()
        await log.close()


async def test_a_batch_with_rows_written_between_its_own_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "caxton.db")
    log = await EventLog.open(path)
    other = other_connection(path)
    try:
        await log.append(stopped("a"))
        # each row the log inserts now takes the rowid after another one's
        other.execute(
            "CREATE TRIGGER shadow BEFORE INSERT ON stored_events "
            "WHEN NEW.originator_id NOT LIKE 'shadow:%' BEGIN "
            "INSERT INTO stored_events VALUES "
            "('shadow:' || NEW.originator_id, NEW.originator_version, NEW.topic, NEW.state); END"
        )

        with pytest.raises(LogCorrupted, match="4 rows were written for a batch of 2 events"):
            await log.append(stopped("b", "c"))

        assert [stream for _, stream, _ in rows(other)] == ["agent:a"]
    finally:
        other.close()
        await log.close()
