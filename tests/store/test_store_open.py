"""Opening the log: recovery after SIGKILL, and clear errors when it cannot be opened."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from caxton.domain.events import AgentStopped
from caxton.shell.store import EventLog, Pending, StoreUnavailable
from tests.store.conftest import POSTGRES_URL, _require_postgres, stop

WRITER = """
import asyncio, sys
from caxton.domain.events import AgentStopped
from caxton.shell.store import EventLog, Pending

async def main() -> None:
    log = await EventLog.open(sys.argv[1])
    n = 0
    while True:
        futures = [log.append([Pending(AgentStopped(agent=f"a{i % 5}"), at=n)]) for i in range(50)]
        for done in await asyncio.gather(*futures):
            n = done[-1].position
        print(n, flush=True)

asyncio.run(main())
"""


async def test_a_log_written_by_a_killed_process_opens_cleanly(store: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, store, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    acknowledged = 0
    for _ in range(20):  # 20 acknowledged batches, then kill it while it writes more
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        assert line, "the writer died on its own"
        acknowledged = int(line)
    child.send_signal(signal.SIGKILL)
    await child.wait()

    log = await EventLog.open(store)
    try:
        report = await log.check_integrity()
        [next_one] = await log.append([Pending(AgentStopped(agent="a0"), at=0)])
    finally:
        await log.close()

    assert report.last_position >= acknowledged  # nothing acknowledged was lost
    assert next_one.position == report.last_position + 1
    assert next_one.version == sum(1 for p in range(report.last_position) if p % 5 == 0) + 1


async def test_a_path_under_a_missing_directory_is_unavailable_and_says_why(tmp_path: Path) -> None:
    where = tmp_path / "nowhere" / "caxton.db"

    with pytest.raises(StoreUnavailable, match="nowhere does not exist") as e:
        await EventLog.open(str(where))
    assert str(where) in str(e.value)


async def test_a_path_under_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(StoreUnavailable, match="is not a directory"):
        await EventLog.open(str(tmp_path / "file" / "caxton.db"))


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    where = tmp_path / "notes.txt"
    where.write_text("this is not SQLite\n" * 100)

    with pytest.raises(StoreUnavailable, match="not an SQLite database") as e:
        await EventLog.open(str(where))
    assert str(where) in str(e.value)


async def test_an_unknown_synchronous_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        await EventLog.open(str(tmp_path / "caxton.db"), synchronous="SOMETIMES")


@pytest.mark.parametrize(("level", "code"), [("NORMAL", 1), ("FULL", 2)])
async def test_the_writer_commits_at_the_synchronous_level_asked(
    tmp_path: Path, level: str, code: int
) -> None:
    log = await EventLog.open(str(tmp_path / "caxton.db"), synchronous=level)
    try:
        cursor = log._backend._writer.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == code
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    finally:
        await log.close()


async def test_a_second_process_reading_the_file_sees_new_events(tmp_path: Path) -> None:
    path = str(tmp_path / "caxton.db")
    writer = await EventLog.open(path)
    reader = await EventLog.open(path)  # stands for another process: no in-process wake-up
    try:
        following = reader.follow()
        waiting = asyncio.ensure_future(anext(following))
        await writer.append([Pending(AgentStopped(agent="a"), at=1)])
        found = await asyncio.wait_for(waiting, 5)  # found by polling
        assert found.event == AgentStopped(agent="a")
        await stop(following)
    finally:
        await reader.close()
        await writer.close()


async def test_the_positions_are_the_rowids_eventsourcing_reads(tmp_path: Path) -> None:
    path = str(tmp_path / "caxton.db")
    log = await EventLog.open(path)
    await log.append([Pending(AgentStopped(agent=a), at=0) for a in "abc"])
    await log.close()

    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT rowid, originator_id FROM stored_events ORDER BY rowid")
        assert list(rows) == [(1, "agent:a"), (2, "agent:b"), (3, "agent:c")]


async def test_an_unreachable_postgresql_is_unavailable_and_named() -> None:
    url = "postgresql://caxton:secret@127.0.0.1:1/nowhere"

    with pytest.raises(StoreUnavailable) as e:
        await EventLog.open(url)
    assert "postgresql://caxton:***@127.0.0.1:1/nowhere" in str(e.value)
    assert "secret" not in str(e.value)


@pytest.mark.postgres
async def test_an_exclusive_postgresql_log_refuses_a_second_exclusive_opener() -> None:
    _require_postgres()
    url = f"{POSTGRES_URL}?schema=caxton_excl_{uuid.uuid4().hex[:8]}"
    first = await EventLog.open(url, exclusive=True)
    try:
        with pytest.raises(StoreUnavailable, match="another Caxton server is using this log"):
            await EventLog.open(url, exclusive=True)
        shared = await EventLog.open(url)  # a reader (an export, a test) may still open it
        await shared.close()
    finally:
        await first.close()
    again = await EventLog.open(url, exclusive=True)  # the lock went with the first server
    await again.close()
    schema = url.rsplit("=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
