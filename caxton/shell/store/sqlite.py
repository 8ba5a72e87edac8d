"""The SQLite backend: eventsourcing's SQLite recorder writes, aiosqlite reads.

Positions are SQLite rowids, which eventsourcing's table has implicitly (it declares no
INTEGER PRIMARY KEY). A new rowid is max(rowid) + 1, so a rolled-back insert leaves no
gap, and with no DELETE possible the sequence 1..N has no holes to reuse.

The writer holds one connection of the recorder's pool, and with it the pool's writer
lock, for the life of the log. Each batch is one BEGIN/COMMIT around the recorder's own
`_insert_events` (its statement, its table, one rowid per row): what `insert_events`
does, without a pool checkout and nested context managers per batch, which cost
about as much as SQLite's own work (docs/adr/0001-event-log.md, "Cheaper commits").
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Collection, Sequence
from pathlib import Path

import aiosqlite
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)

from caxton.shell.store.backend import APPEND_ONLY, TABLE
from caxton.shell.store.checkpoint import WalCheckpointer
from caxton.shell.store.envelope import Row
from caxton.shell.store.errors import StoreUnavailable, translated

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_COLUMNS = "rowid, originator_id, originator_version, topic, state"
_LOOKUP_CHUNK = 500  # streams per lookup query, well under SQLite's limit of parameters
_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS caxton_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    for verb in ("UPDATE", "DELETE")
]


class _TunedPool(SQLiteConnectionPool):
    """eventsourcing's pool (it sets WAL), also setting `synchronous` on each connection."""

    def __init__(self, *, db_name: str, synchronous: str) -> None:
        super().__init__(db_name=db_name, pool_size=2, max_overflow=2)
        self.synchronous = synchronous

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        conn.cursor().execute(f"PRAGMA synchronous={self.synchronous}")
        return conn


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
        self._cursor = writer.cursor()
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

    def insert(self, batch: Sequence[StoredEvent]) -> list[int]:
        with translated(self.where):
            self._cursor.execute("BEGIN")
            try:
                ids = self._recorder._insert_events(self._cursor, batch)
                self._writer.commit()
            except BaseException:
                self._writer.rollback()  # no transaction, and no write lock, outlives a batch
                raise
        return list(ids or ())

    def last_versions(self, streams: Collection[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        names = list(streams)
        with translated(self.where):
            cursor = self._lookups
            for start in range(0, len(names), _LOOKUP_CHUNK):
                chunk = names[start : start + _LOOKUP_CHUNK]
                cursor.execute(_last_versions(len(chunk)), chunk)
                found.update(cursor.fetchall())
        return found

    @functools.cached_property
    def _lookups(self) -> sqlite3.Cursor:
        """A cursor of the writer's connection, used between its transactions, so that it
        sees every commit: one kept, as a lookup costs a few microseconds of SQLite's."""
        return self._writer.cursor().sqlite_cursor

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
