"""The SQLite backend: eventsourcing's SQLite recorder's table and statement, aiosqlite reads.

Positions are SQLite rowids, which eventsourcing's table has implicitly (it declares no
INTEGER PRIMARY KEY). A new rowid is max(rowid) + 1, so a rolled-back insert leaves no
gap, and with no DELETE possible the sequence 1..N has no holes to reuse.

The writer holds one connection of the recorder's pool, and with it the pool's writer
lock, for the life of the log. Each batch is one BEGIN/COMMIT around one `executemany`
of the recorder's own statement, not its `_insert_events` (an `execute` per row, to read
each `lastrowid`). Inside the transaction no other connection writes, so the rows take
the rowids last - n + 1 .. last; `insert` checks that before it commits
(docs/adr/0001-event-log.md, "Cheaper commits").
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path

import aiosqlite
from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)

from caxton.shell.store.backend import APPEND_ONLY, TABLE, NewRow
from caxton.shell.store.checkpoint import WalCheckpointer
from caxton.shell.store.envelope import Row
from caxton.shell.store.errors import LogCorrupted, StoreUnavailable, translated

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_COLUMNS = "rowid, originator_id, originator_version, topic, state"
_LOOKUP_CHUNK = 500  # streams per lookup query, well under SQLite's limit of parameters
# the last rowid the batch's statement gave, and the table's highest (a seek, not a scan)
_LAST_ROWIDS = f"SELECT last_insert_rowid(), (SELECT MAX(rowid) FROM {TABLE})"
_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS caxton_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    for verb in ("UPDATE", "DELETE")
]


class _TunedPool(SQLiteConnectionPool):
    """eventsourcing's pool, its connections made as eventsourcing 9.5.6 makes them (WAL,
    autocommit, `sqlite3.Row`), with `synchronous` set and sqlite3's default statement
    cache. eventsourcing's holds one statement (`cached_statements=True`): BEGIN, the
    INSERT and the lookups evicted each other, and SQLite compiled each again every batch."""

    def __init__(self, *, db_name: str, synchronous: str) -> None:
        super().__init__(db_name=db_name, pool_size=2, max_overflow=2)
        self.synchronous = synchronous

    def _create_connection(self) -> SQLiteConnection:
        try:
            conn = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            conn.execute("PRAGMA journal_mode=WAL")
            self.is_journal_mode_wal = True
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return SQLiteConnection(sqlite_conn=conn, max_age=self.max_age)


class SQLiteBackend:
    """One file: a writer connection owned by the recorder, a read connection in aiosqlite."""

    def __init__(
        self,
        where: str,
        datastore: SQLiteDatastore,
        recorder: SQLiteApplicationRecorder,
        writer: SQLiteConnection,
        reader: aiosqlite.Connection,
    ) -> None:
        self.where = where
        # Measured (docs/adr/0001-event-log.md): a WAL commit, even with FULL's fsync,
        # costs less than the thread hop, so commits run on the loop thread.
        self.commits_inline = True
        self._datastore = datastore
        self._recorder = recorder
        self._writer = writer
        self._cursor = writer.cursor().sqlite_cursor
        self._cursor.row_factory = None  # plain tuples, not the pool's sqlite3.Row
        self._insert = recorder.insert_events_statement
        self._reader = reader
        # checkpoints off the commit path (checkpoint.py): the writer never runs one
        self._cursor.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = WalCheckpointer(where)
        self._checkpointer.start()

    @classmethod
    async def open(cls, path: str, *, synchronous: str) -> SQLiteBackend:
        """Opens or creates the file, its table and its append-only triggers."""
        level = synchronous.upper()
        if level not in SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}: {synchronous!r}"
            )
        where = os.path.abspath(path)
        _check_directory(where)
        with translated(where):
            datastore = SQLiteDatastore(where, originator_id_type="text")
            datastore.pool = _TunedPool(db_name=where, synchronous=level)
            recorder = SQLiteApplicationRecorder(datastore, events_table_name=TABLE)
            try:
                recorder.create_table()
                with datastore.transaction(commit=True) as cursor:
                    for statement in _TRIGGERS:
                        cursor.execute(statement)
                # Any other write through this datastore would now wait: one writer.
                writer = datastore.pool.get_connection(is_writer=True)
                reader = await aiosqlite.connect(where, iter_chunk_size=4096)
            except BaseException:
                datastore.close()
                raise
            await reader.execute("PRAGMA query_only=ON")
        return cls(where, datastore, recorder, writer, reader)

    def insert(self, batch: Sequence[NewRow]) -> Sequence[int]:
        if not batch:
            return range(0)  # last_insert_rowid() would be an earlier batch's
        cursor = self._cursor
        connection = cursor.connection
        with translated(self.where):
            cursor.execute("BEGIN")
            try:
                changes = connection.total_changes
                cursor.executemany(self._insert, batch)
                inserted = connection.total_changes - changes
                last, highest = cursor.execute(_LAST_ROWIDS).fetchone()
                _check_consecutive(self.where, len(batch), inserted, last, highest)
                cursor.execute("COMMIT")
            except BaseException:
                connection.rollback()  # no transaction, and no write lock, outlives a batch
                raise
        return range(last - len(batch) + 1, last + 1)

    def last_versions(self, streams: Collection[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        names = list(streams)
        with translated(self.where):
            # the writer's cursor, between its transactions: it sees every commit
            cursor = self._cursor
            for start in range(0, len(names), _LOOKUP_CHUNK):
                chunk = names[start : start + _LOOKUP_CHUNK]
                cursor.execute(_last_versions(len(chunk)), chunk)
                found.update(cursor.fetchall())
        return found

    async def rows(
        self, *, after: int, limit: int, stream: str | None = None, after_version: int = 0
    ) -> list[Row]:
        if stream is None:
            query = f"SELECT {_COLUMNS} FROM {TABLE} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            params: tuple[object, ...] = (after, limit)
        else:
            # The (originator_id, originator_version) key walks one stream in log order.
            query = (
                f"SELECT {_COLUMNS} FROM {TABLE} WHERE originator_id = ? "
                "AND originator_version > ? AND rowid > ? ORDER BY originator_version LIMIT ?"
            )
            params = (stream, after_version, after, limit)
        with translated(self.where):
            fetched = await self._reader.execute_fetchall(query, params)
        return [Row(*r) for r in fetched]

    async def last_position(self) -> int:
        with translated(self.where):
            fetched = list(await self._reader.execute_fetchall(f"SELECT MAX(rowid) FROM {TABLE}"))
        return int(fetched[0][0] or 0)

    async def streams_before(self, *, before: int, after: int, limit: int) -> list[tuple[int, str]]:
        query = (
            f"SELECT rowid, originator_id FROM {TABLE} WHERE rowid < ? AND rowid > ? "
            "ORDER BY rowid DESC LIMIT ?"
        )
        with translated(self.where):
            fetched = await self._reader.execute_fetchall(query, (before, after, limit))
        return [(int(r[0]), str(r[1])) for r in fetched]

    async def close(self) -> None:
        with translated(self.where):
            try:
                self._checkpointer.stop()
                await self._reader.close()
            finally:
                try:
                    self._datastore.pool.put_connection(self._writer)
                finally:
                    self._datastore.close()


def _check_consecutive(where: str, events: int, inserted: int, last: int, highest: int) -> None:
    """Refuses a batch whose rows did not take the rowids last - n + 1 .. last.

    SQLite gives each new row max(rowid) + 1 unless that max is already 2**63 - 1; then
    it picks unused rowids at random, and every later row is random too. So if the
    batch's last row holds the table's highest rowid, no row was random and they are
    consecutive. `total_changes` counts rows written by triggers as well: exactly one
    row per event means nothing else was written between them."""
    if inserted != events:
        reason = f"{inserted} rows were written for a batch of {events} events"
        raise LogCorrupted(where, f"{reason} (a trigger on {TABLE}?); nothing was committed")
    if last != highest:
        reason = f"the batch's last row took rowid {last}, below the highest, {highest}"
        raise LogCorrupted(where, f"{reason}: its positions are unknown; nothing was committed")


@functools.lru_cache(maxsize=32)
def _last_versions(streams: int) -> str:
    """The last version of each of `streams` streams: a seek each on the primary key
    (originator_id, originator_version)."""
    return (
        f"SELECT originator_id, MAX(originator_version) FROM {TABLE} WHERE originator_id "
        f"IN ({', '.join('?' * streams)}) GROUP BY originator_id"
    )


def _check_directory(where: str) -> None:
    """Fails early, and says why, when the file cannot live where it is asked to."""
    parent = Path(where).parent
    if not parent.exists():
        raise StoreUnavailable(where, f"cannot open the event log: {parent} does not exist")
    if not parent.is_dir():
        raise StoreUnavailable(where, f"cannot open the event log: {parent} is not a directory")
    if Path(where).is_dir():
        raise StoreUnavailable(where, "cannot open the event log: this path is a directory")
