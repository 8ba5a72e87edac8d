"""The PostgreSQL backend: eventsourcing's PostgreSQL recorder writes, psycopg async reads.

The store URL is `postgresql://user[:password]@host[:port]/db[?schema=name]`.
Positions are the recorder's `notification_id` (a bigserial). A sequence skips the
values of a rolled-back transaction, so the writer resets it to max + 1 under the
table lock eventsourcing already takes for every insert: committed positions stay 1..N.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from caxton.shell.store.backend import APPEND_ONLY, TABLE, NewRow
from caxton.shell.store.envelope import Row
from caxton.shell.store.errors import StoreUnavailable, translated

CONNECT_TIMEOUT_S = 5
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_COLUMNS = SQL("notification_id, originator_id, originator_version, topic, state")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a `postgresql://` URL points."""

    user: str
    password: str
    host: str
    port: int
    dbname: str
    schema: str

    @property
    def redacted(self) -> str:
        secret = ":***" if self.password else ""
        tail = f"?schema={self.schema}" if self.schema != "public" else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{self.dbname}{tail}"

    @property
    def conninfo(self) -> str:
        return make_conninfo(
            user=self.user,
            password=self.password or None,
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            connect_timeout=CONNECT_TIMEOUT_S,
        )


def parse_url(url: str) -> Target:
    """Reads a store URL; raises `StoreUnavailable` naming what is wrong with it."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.get("schema", ["public"])[0]
    where = url.replace(f":{parts.password}@", ":***@") if parts.password else url
    if not _SCHEMA_NAME.match(schema):
        raise StoreUnavailable(where, f"schema {schema!r} must be a lower-case SQL identifier")
    try:
        port = parts.port or 5432
    except ValueError as e:
        raise StoreUnavailable(where, f"bad port: {e}") from None
    return Target(
        user=unquote(parts.username or "") or getpass.getuser(),
        password=unquote(parts.password or ""),
        host=parts.hostname or "127.0.0.1",
        port=port,
        dbname=parts.path.lstrip("/") or "postgres",
        schema=schema,
    )


class _GapFreeRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, resetting the position sequence once it holds the lock."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, events_table_name=TABLE)
        self._reset_sequence: Composed | None = None

    def create_table(self) -> None:
        super().create_table()
        qualified = f'"{self.datastore.schema}"."{TABLE}"'
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'notification_id') AS seq", (qualified,)
            )
            row = cursor.fetchone()
        assert row is not None
        self._reset_sequence = SQL(
            "SELECT setval({seq}::regclass, COALESCE(MAX(notification_id), 0) + 1, false) "
            "FROM {schema}.{table}"
        ).format(
            seq=Literal(row["seq"]),
            schema=Identifier(self.datastore.schema),
            table=Identifier(TABLE),
        )

    def _lock_table(self, curs: psycopg.Cursor[DictRow]) -> None:
        super()._lock_table(curs)
        assert self._reset_sequence is not None, "create_table() first"
        curs.execute(self._reset_sequence, prepare=True)


class PostgresBackend:
    """A schema in a PostgreSQL database: a pooled writer connection, an async reader."""

    commits_inline = False  # a commit is a network round trip: never on the loop

    def __init__(
        self,
        target: Target,
        datastore: PostgresDatastore,
        recorder: _GapFreeRecorder,
        reader: psycopg.AsyncConnection[Any],
    ) -> None:
        self.where = target.redacted
        self._datastore = datastore
        self._recorder = recorder
        self._reader = reader
        table = SQL("{}.{}").format(Identifier(target.schema), Identifier(TABLE))
        self._all = SQL(
            "SELECT {} FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(_COLUMNS, table)
        self._stream = SQL(
            "SELECT {} FROM {} WHERE originator_id = %s AND originator_version > %s "
            "AND notification_id > %s ORDER BY originator_version LIMIT %s"
        ).format(_COLUMNS, table)
        self._max = SQL("SELECT MAX(notification_id) FROM {}").format(table)
        self._before = SQL(
            "SELECT notification_id, originator_id FROM {} WHERE notification_id < %s "
            "AND notification_id > %s ORDER BY notification_id DESC LIMIT %s"
        ).format(table)
        self._versions = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {} "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id"
        ).format(table)

    @classmethod
    async def open(cls, url: str, *, exclusive: bool = False) -> PostgresBackend:
        """Connects, then creates the schema, table and append-only triggers if missing.

        With `exclusive`, the reader's session holds an advisory lock on the log for as
        long as it is open, and a second exclusive opener is refused."""
        target = parse_url(url)
        with translated(target.redacted):
            reader = await psycopg.AsyncConnection.connect(target.conninfo, autocommit=True)
            try:
                if exclusive:
                    await _hold_exclusively(reader, target)
                await reader.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(target.schema))
                )
                datastore, recorder = await asyncio.to_thread(_open_writer, target)
            except BaseException:
                await reader.close()
                raise
        return cls(target, datastore, recorder, reader)

    def insert(self, batch: Sequence[NewRow]) -> list[int]:
        # The recorder's insert_events is already one statement per batch (an INSERT
        # from unnest of the rows, RETURNING their ids): kept, fed the StoredEvents it takes.
        stored = [StoredEvent(s, v, topic, bytes(state)) for s, v, topic, state in batch]
        with translated(self.where):
            ids = self._recorder.insert_events(stored)
        return list(ids or ())

    def last_versions(self, streams: Collection[str]) -> dict[str, int]:
        # In the writer thread, between its transactions: it sees every commit.
        with translated(self.where), self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._versions, (list(streams),), prepare=True)
            return {r["originator_id"]: r["version"] for r in cursor.fetchall()}

    async def rows(
        self, *, after: int, limit: int, stream: str | None = None, after_version: int = 0
    ) -> list[Row]:
        with translated(self.where):
            async with self._reader.cursor() as cursor:
                if stream is None:
                    await cursor.execute(self._all, (after, limit))
                else:
                    await cursor.execute(self._stream, (stream, after_version, after, limit))
                fetched = await cursor.fetchall()
        return [Row(r[0], r[1], r[2], r[3], bytes(r[4])) for r in fetched]

    async def last_position(self) -> int:
        with translated(self.where):
            async with self._reader.cursor() as cursor:
                await cursor.execute(self._max)
                row = await cursor.fetchone()
        return int(row[0] or 0) if row else 0

    async def streams_before(self, *, before: int, after: int, limit: int) -> list[tuple[int, str]]:
        with translated(self.where):
            async with self._reader.cursor() as cursor:
                await cursor.execute(self._before, (before, after, limit))
                fetched = await cursor.fetchall()
        return [(int(r[0]), str(r[1])) for r in fetched]

    async def close(self) -> None:
        with translated(self.where):
            try:
                # the exclusive lock goes now, not when the server notices the session
                # ended (a new server opening the log at once was refused meanwhile)
                with contextlib.suppress(psycopg.Error):
                    await self._reader.execute("SELECT pg_advisory_unlock_all()")
                await self._reader.close()
            finally:
                await asyncio.to_thread(self._datastore.close)


async def _hold_exclusively(reader: psycopg.AsyncConnection[Any], target: Target) -> None:
    key = f"caxton:{target.dbname}:{target.schema}.{TABLE}"
    cursor = await reader.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
    row = await cursor.fetchone()
    if not row or not row[0]:
        raise StoreUnavailable(
            target.redacted,
            "another Caxton server is using this log; stop it first or choose another schema",
        )


def _open_writer(target: Target) -> tuple[PostgresDatastore, _GapFreeRecorder]:
    """Blocking setup, run in a thread: the recorder's table, then the triggers."""
    datastore = PostgresDatastore(
        dbname=target.dbname,
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        connect_timeout=CONNECT_TIMEOUT_S,
        pool_open_timeout=CONNECT_TIMEOUT_S,
        idle_in_transaction_session_timeout=5,
        pool_size=1,
        max_overflow=1,
        schema=target.schema,
        originator_id_type="text",
    )
    try:
        recorder = _GapFreeRecorder(datastore)
        recorder.create_table()
        _install_append_only(datastore, target.schema)
    except BaseException:
        datastore.close()
        raise
    return datastore, recorder


def _install_append_only(datastore: PostgresDatastore, schema: str) -> None:
    """Triggers that refuse UPDATE, DELETE and TRUNCATE, created once, under a lock."""
    table = SQL("{}.{}").format(Identifier(schema), Identifier(TABLE))
    function = SQL("{}.caxton_append_only").format(Identifier(schema))
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table))
        cursor.execute(
            SQL(
                "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION '{} (% refused)', TG_OP; END $$"
            ).format(function, SQL(APPEND_ONLY))
        )
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass",
            (f'"{schema}"."{TABLE}"',),
        )
        existing = {r["tgname"] for r in cursor.fetchall()}
        wanted = {
            "caxton_no_update_delete": "BEFORE UPDATE OR DELETE ON {} FOR EACH ROW",
            "caxton_no_truncate": "BEFORE TRUNCATE ON {} FOR EACH STATEMENT",
        }
        for name, when in wanted.items():
            if name not in existing:
                cursor.execute(
                    SQL("CREATE TRIGGER {} " + when + " EXECUTE FUNCTION {}()").format(
                        Identifier(name), table, function
                    )
                )
