"""The PostgreSQL backend: eventsourcing's PostgreSQL recorder writes, psycopg async reads.

The store URL is `postgresql://user[:password]@host[:port]/db[?schema=name]`.
Positions are the recorder's `notification_id` (a bigserial). A sequence skips the
values of a rolled-back transaction, so the writer resets it to max + 1 under the
table lock eventsourcing already takes for every insert: committed positions stay 1..N.

A shared log (a cluster's, docs/adr/0018-cluster.md) is the same table written by every
node, each append one call of a function in the database, `caxton_append`: the same
lock and reset, then the append's lease fence checked or its claim made in the lease
table beside the events (table first, then lease rows: the one lock order, the other
deadlocks), then the insert, numbering each stream from what the table holds. Its
nodes hear each other's commits by LISTEN on the recorder's NOTIFY channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from caxton.domain.placement import SHARDS
from caxton.shell.store.backend import (
    APPEND_ONLY,
    COMPONENTS,
    LEASES,
    TABLE,
    Claim,
    Fence,
    Guard,
    Lease,
    NewRow,
)
from caxton.shell.store.envelope import Row
from caxton.shell.store.errors import CLAIM_REFUSED, LEASE_LOST, StoreUnavailable, translated

logger = logging.getLogger("caxton.store")

CONNECT_TIMEOUT_S = 5
RECONNECT_S = (0.1, 5.0)
"""The first and the longest wait before listening again after the connection was lost."""
_WATCHFUL = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}
"""libpq options of a shared log's listener and lease connections: a network cut is
found in seconds, not in the kernel's minutes (a renewal hung on a dead link would
keep a node from noticing that its leases lapse, a listener would wait for ever)."""
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

    @property
    def watchful_conninfo(self) -> str:
        """`conninfo` with the keepalives of a connection that must notice a cut."""
        return make_conninfo(self.conninfo, **_WATCHFUL)


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
        self.sequence = ""
        """The positions' sequence, by its qualified name (known once the table is)."""

    def create_table(self) -> None:
        super().create_table()
        qualified = f'"{self.datastore.schema}"."{TABLE}"'
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'notification_id') AS seq", (qualified,)
            )
            row = cursor.fetchone()
        assert row is not None
        self.sequence = row["seq"]
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


class _SharedRecorder(_GapFreeRecorder):
    """A shared log's recorder: eventsourcing's table, so that its tools read the log
    as theirs, plus the lease and component tables and `caxton_append`, the one
    statement through which every node appends (`_cluster_ddl`)."""

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as cursor:
            for statement in _cluster_ddl(self.datastore.schema, self.sequence, self.channel_name):
                cursor.execute(statement)


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
    async def open(
        cls, url: str, *, exclusive: bool = False, shared: bool = False
    ) -> PostgresBackend:
        """Connects, then creates the schema, table and append-only triggers if missing
        (and a shared log's lease table), one opener at a time.

        With `exclusive`, the reader's session holds an advisory lock on the log for as
        long as it is open, and a second exclusive opener is refused. `shared`: a
        `SharedPostgresBackend`, which every node of a cluster opens."""
        target = parse_url(url)
        with translated(target.redacted):
            reader = await psycopg.AsyncConnection.connect(target.conninfo, autocommit=True)
            try:
                if exclusive:
                    await _hold_exclusively(reader, target)
                # CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE (a
                # cluster's nodes start together): the setup waits for any other's
                setup = _lock_key(target, "setup")
                await reader.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (setup,))
                await reader.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(target.schema))
                )
                datastore, recorder = await asyncio.to_thread(_open_writer, target, shared)
                await reader.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (setup,))
                if not shared:
                    return cls(target, datastore, recorder, reader)
                try:
                    listener = await _listening(target, recorder.channel_name)
                    try:
                        leases = await psycopg.AsyncConnection.connect(
                            target.watchful_conninfo, autocommit=True
                        )
                    except BaseException:
                        await listener.close()
                        raise
                except BaseException:
                    await asyncio.to_thread(datastore.close)
                    raise
            except BaseException:
                await reader.close()
                raise
        return SharedPostgresBackend(target, datastore, recorder, reader, listener, leases)

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


class SharedPostgresBackend(PostgresBackend):
    """A cluster's log: every node appends to and follows the same table.

    Beside the reader and the writer's pool it holds two connections: one LISTENs for
    any node's commits (psycopg's `notifies()` keeps its connection to itself), one
    renews and releases leases, so that neither waits behind the other, nor behind a
    writer blocked on the table lock."""

    def __init__(
        self,
        target: Target,
        datastore: PostgresDatastore,
        recorder: _GapFreeRecorder,
        reader: psycopg.AsyncConnection[Any],
        listener: psycopg.AsyncConnection[Any],
        leases: psycopg.AsyncConnection[Any],
    ) -> None:
        super().__init__(target, datastore, recorder, reader)
        self._target = target
        self._listener = listener
        self._leases = leases
        self._watching: asyncio.Task[None] | None = None
        table = SQL("{}.{}").format(Identifier(target.schema), Identifier(LEASES))
        self._all_leases = SQL(
            "SELECT shard, owner, epoch, CASE WHEN isfinite(expires_at) "
            "THEN EXTRACT(EPOCH FROM expires_at - clock_timestamp()) END FROM {} ORDER BY shard"
        ).format(table)
        # An expired lease is still renewed if no one claimed it (its epoch is current);
        # a released one is not: the node gave it up.
        self._renew = SQL(
            "UPDATE {} AS l SET expires_at = clock_timestamp() + make_interval(secs => %s) "
            "FROM unnest(%s::integer[], %s::bigint[]) AS h(shard, epoch) "
            "WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = %s "
            "AND l.expires_at > '-infinity' RETURNING l.shard"
        ).format(table)
        self._release = SQL(
            "UPDATE {} AS l SET expires_at = '-infinity' "
            "FROM unnest(%s::integer[], %s::bigint[]) AS h(shard, epoch) "
            "WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = %s"
        ).format(table)
        self._append = SQL(
            "SELECT out_position, out_version FROM {}.caxton_append(%s::text[], %s::text[], "
            "%s::bytea[], %s::integer[], %s::bigint[], %s::text, %s::integer, %s::text, "
            "%s::bigint, %s::double precision)"
        ).format(Identifier(target.schema))
        components = SQL("{}.{}").format(Identifier(target.schema), Identifier(COMPONENTS))
        self._put_component = SQL(
            "INSERT INTO {} (digest, wasm) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        ).format(components)
        self._get_component = SQL("SELECT wasm FROM {} WHERE digest = %s").format(components)

    def insert(self, batch: Sequence[NewRow]) -> list[int]:
        return self.insert_numbered(batch, None)[0]

    def insert_numbered(
        self, batch: Sequence[NewRow], guard: Guard | None
    ) -> tuple[list[int], list[int]]:
        # One statement on an autocommit connection: its own transaction, run whole on
        # the server (a frozen node cannot hold the table lock between statements), and
        # no pipeline (psycopg's, under load, reported a refused guard as "pipeline
        # aborted", an OperationalError that eventsourcing retried ten times). Never
        # retried here: the database numbers the events, so a retry after a lost
        # COMMIT could write them twice.
        fence = guard.held if isinstance(guard, Fence) else ()
        claim = guard if isinstance(guard, Claim) else None
        params = (
            [stream for stream, _, _, _ in batch],
            [topic for _, _, topic, _ in batch],
            [bytes(state) for _, _, _, state in batch],
            [shard for shard, _ in fence] if fence else None,
            [epoch for _, epoch in fence] if fence else None,
            guard.release or None if isinstance(guard, Fence) else None,
            None if claim is None else claim.shard,
            None if claim is None else claim.node,
            None if claim is None else claim.seen_epoch,
            None if claim is None else claim.ttl_s,
        )
        with translated(self.where), self._datastore.get_connection() as connection:
            fetched = connection.execute(self._append, params, prepare=True).fetchall()
        numbered = sorted((r["out_position"], r["out_version"]) for r in fetched)
        return [position for position, _ in numbered], [version for _, version in numbered]

    def watch(self, wake: Callable[[], None]) -> None:
        if self._watching is None:
            self._watching = asyncio.get_running_loop().create_task(
                self._listen(wake), name="caxton-log-listener"
            )

    async def leases(self) -> dict[int, Lease]:
        fetched = await self._on_lease_connection(self._all_leases, ())
        return {
            r[0]: Lease(r[0], r[1], r[2], -math.inf if r[3] is None else float(r[3]))
            for r in fetched
        }

    async def renew(self, node: str, held: Mapping[int, int], ttl_s: float) -> set[int]:
        if not held:
            return set()
        shards, epochs = _columns(held)
        fetched = await self._on_lease_connection(self._renew, (ttl_s, shards, epochs, node))
        return {r[0] for r in fetched}

    async def release(self, node: str, held: Mapping[int, int]) -> None:
        if held:
            shards, epochs = _columns(held)
            await self._on_lease_connection(self._release, (shards, epochs, node))

    async def put_component(self, digest: str, wasm: bytes) -> None:
        # the reader's connection: a large component must not hold up a lease renewal
        with translated(self.where):
            await self._reader.execute(self._put_component, (digest, wasm))

    async def get_component(self, digest: str) -> bytes | None:
        with translated(self.where):
            async with self._reader.cursor() as cursor:
                await cursor.execute(self._get_component, (digest,))
                row = await cursor.fetchone()
        return None if row is None else bytes(row[0])

    async def close(self) -> None:
        try:
            if self._watching is not None:
                self._watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._watching
            with contextlib.suppress(psycopg.Error):
                await self._listener.close()
            with contextlib.suppress(psycopg.Error):
                await self._leases.close()
        finally:
            await super().close()

    async def _on_lease_connection(
        self, statement: Composed, params: tuple[object, ...]
    ) -> list[tuple[Any, ...]]:
        """Runs one lease statement on the lease connection; if that connection was lost
        (a server restart, a network blip), connects again and runs it once more: every
        lease statement is idempotent, and a node's renewals must not fail for good."""
        with translated(self.where):
            try:
                return await self._lease_statement(statement, params)
            except psycopg.OperationalError:
                if not self._leases.broken:
                    raise
            return await self._lease_statement(statement, params)

    async def _lease_statement(
        self, statement: Composed, params: tuple[object, ...]
    ) -> list[tuple[Any, ...]]:
        if self._leases.closed or self._leases.broken:
            self._leases = await psycopg.AsyncConnection.connect(
                self._target.watchful_conninfo, autocommit=True
            )
        async with self._leases.cursor() as cursor:
            await cursor.execute(statement, params)
            return await cursor.fetchall() if cursor.description else []

    async def _listen(self, wake: Callable[[], None]) -> None:
        """Wakes followers at each notification; listens again when the connection is
        lost, and wakes them then too (what committed meanwhile was not notified)."""
        channel = self._recorder.channel_name
        while True:
            try:
                async for _ in self._listener.notifies():
                    wake()
            except psycopg.Error as e:
                logger.warning("lost the log's notifications (%s): listening again", e)
            with contextlib.suppress(psycopg.Error):
                await self._listener.close()
            delay = RECONNECT_S[0]
            while True:
                await asyncio.sleep(delay)
                try:
                    self._listener = await _listening(self._target, channel)
                except psycopg.Error as e:
                    logger.debug("cannot listen yet (%s)", e)
                    delay = min(delay * 2, RECONNECT_S[1])
                else:
                    break
            wake()


def _columns(held: Mapping[int, int]) -> tuple[list[int], list[int]]:
    """Shards and their epochs as two arrays, by shard: every statement locks lease rows
    in that one order."""
    shards = sorted(held)
    return shards, [held[s] for s in shards]


async def _listening(target: Target, channel: str) -> psycopg.AsyncConnection[Any]:
    """A connection of its own, LISTENing on the recorder's channel."""
    connection = await psycopg.AsyncConnection.connect(target.watchful_conninfo, autocommit=True)
    try:
        await connection.execute(SQL("LISTEN {}").format(Identifier(channel)))
    except BaseException:
        await connection.close()
        raise
    return connection


def _lock_key(target: Target, purpose: str) -> str:
    return f"caxton:{target.dbname}:{target.schema}.{TABLE}" + (f":{purpose}" if purpose else "")


async def _hold_exclusively(reader: psycopg.AsyncConnection[Any], target: Target) -> None:
    key = _lock_key(target, "")
    cursor = await reader.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
    row = await cursor.fetchone()
    if not row or not row[0]:
        raise StoreUnavailable(
            target.redacted,
            "another Caxton server is using this log; stop it first or choose another schema",
        )


def _open_writer(target: Target, shared: bool) -> tuple[PostgresDatastore, _GapFreeRecorder]:
    """Blocking setup, run in a thread: the recorder's table (and a shared log's lease
    table), then the triggers."""
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
        recorder = _SharedRecorder(datastore) if shared else _GapFreeRecorder(datastore)
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


def _cluster_ddl(schema: str, sequence: str, channel: str) -> list[Composed]:
    """A shared log's tables and functions, beside its events: a lease per shard, the
    two checks an append makes after the table lock (each raises with its own SQLSTATE
    and the shards in DETAIL, which `errors.translate` reads), `caxton_append`, and
    the components. clock_timestamp(), not now(): now() is when the transaction began,
    before it waited for the table lock."""
    names = {
        "events": SQL("{}.{}").format(Identifier(schema), Identifier(TABLE)),
        "sequence": Literal(sequence),
        "channel": Literal(channel),
        "leases": SQL("{}.{}").format(Identifier(schema), Identifier(LEASES)),
        "append": SQL("{}.caxton_append").format(Identifier(schema)),
        "check_fence": SQL("{}.caxton_check_fence").format(Identifier(schema)),
        "claim_shard": SQL("{}.caxton_claim_shard").format(Identifier(schema)),
        "lease_lost": Literal(LEASE_LOST),
        "claim_refused": Literal(CLAIM_REFUSED),
    }
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {leases} (shard integer PRIMARY KEY, "
            "owner text NOT NULL DEFAULT '', epoch bigint NOT NULL DEFAULT 0, "
            "expires_at timestamptz NOT NULL DEFAULT '-infinity')"
        ).format(**names),
        SQL(
            "INSERT INTO {leases} (shard) SELECT generate_series(0, {last}) ON CONFLICT DO NOTHING"
        ).format(last=Literal(SHARDS - 1), **names),
        SQL(
            """CREATE OR REPLACE FUNCTION {check_fence}(shards integer[], epochs bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    moved text;
    lost text;
BEGIN
    SELECT string_agg(format('shard %s from epoch %s to %s', f.shard, f.epoch,
                             coalesce(l.epoch::text, 'none')), ', ' ORDER BY f.shard),
           string_agg(f.shard::text, ',' ORDER BY f.shard)
      INTO moved, lost
      FROM unnest(shards, epochs) AS f(shard, epoch)
      LEFT JOIN {leases} AS l ON l.shard = f.shard
     WHERE l.epoch IS DISTINCT FROM f.epoch;
    IF lost IS NOT NULL THEN
        RAISE EXCEPTION 'lease lost: % (another node claimed it); nothing was written',
            moved USING ERRCODE = {lease_lost}, DETAIL = lost;
    END IF;
END $$"""
        ).format(**names),
        SQL(
            """CREATE OR REPLACE FUNCTION {claim_shard}(
    p_shard integer, p_node text, p_seen bigint, p_ttl_s double precision)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    lease {leases}%ROWTYPE;
BEGIN
    UPDATE {leases}
       SET owner = p_node, epoch = epoch + 1,
           expires_at = clock_timestamp() + make_interval(secs => p_ttl_s)
     WHERE shard = p_shard AND epoch = p_seen
       AND (owner = '' OR owner = p_node OR expires_at <= clock_timestamp())
    RETURNING * INTO lease;
    IF FOUND THEN
        RETURN lease.epoch;
    END IF;
    SELECT * INTO lease FROM {leases} WHERE shard = p_shard;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'claim of shard % refused: there is no such shard', p_shard
            USING ERRCODE = {claim_refused}, DETAIL = p_shard::text;
    ELSIF lease.epoch <> p_seen THEN
        RAISE EXCEPTION 'claim of shard % refused: its epoch is %, not % (claimed since)',
            p_shard, lease.epoch, p_seen USING ERRCODE = {claim_refused}, DETAIL = p_shard::text;
    END IF;
    RAISE EXCEPTION 'claim of shard % refused: % holds it for another % s', p_shard,
        lease.owner, round(extract(epoch FROM lease.expires_at - clock_timestamp()), 1)
        USING ERRCODE = {claim_refused}, DETAIL = p_shard::text;
END $$"""
        ).format(**names),
        # Every writer in one order: the table lock, the position sequence reset to
        # max + 1 (gap-free: see the module), the guard, then the insert, numbering
        # each stream from what the table holds. Positions are taken in ORDER BY
        # order: the i-th position is the i-th event's.
        SQL(
            """CREATE OR REPLACE FUNCTION {append}(
    streams text[], topics text[], states bytea[], fence_shards integer[],
    fence_epochs bigint[], release_node text, claim_shard integer, claim_node text,
    claim_seen bigint, claim_ttl_s double precision)
RETURNS TABLE (out_position bigint, out_version bigint) LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE {events} IN EXCLUSIVE MODE;
    PERFORM setval({sequence}::regclass, COALESCE(MAX(notification_id), 0) + 1, false)
       FROM {events};
    IF claim_shard IS NOT NULL THEN
        PERFORM {claim_shard}(claim_shard, claim_node, claim_seen, claim_ttl_s);
    END IF;
    IF fence_shards IS NOT NULL THEN
        PERFORM {check_fence}(fence_shards, fence_epochs);
        IF release_node IS NOT NULL THEN
            UPDATE {leases} SET expires_at = '-infinity'
             WHERE shard = ANY(fence_shards) AND owner = release_node;
        END IF;
    END IF;
    PERFORM pg_notify({channel}, '');
    RETURN QUERY
    INSERT INTO {events} AS t (originator_id, originator_version, topic, state)
    SELECT e.stream, COALESCE(l.version, 0)
           + row_number() OVER (PARTITION BY e.stream ORDER BY e.n), e.topic, e.state
      FROM unnest(streams, topics, states) WITH ORDINALITY AS e(stream, topic, state, n)
      LEFT JOIN LATERAL (SELECT MAX(m.originator_version) AS version FROM {events} AS m
                          WHERE m.originator_id = e.stream) AS l ON true
     ORDER BY e.n
    RETURNING t.notification_id, t.originator_version;
END $$"""
        ).format(**names),
        SQL("CREATE TABLE IF NOT EXISTS {} (digest text PRIMARY KEY, wasm bytea NOT NULL)").format(
            SQL("{}.{}").format(Identifier(schema), Identifier(COMPONENTS))
        ),
    ]


async def answering(url: str, *, within_s: float) -> None:
    """Returns once the PostgreSQL server of `url` answers a query; raises
    `StoreUnavailable` when it does not within `within_s` (a node waiting to rejoin its
    cluster asks this until the network heals)."""
    target = parse_url(url)
    try:
        async with asyncio.timeout(within_s):
            with translated(target.redacted):
                connection = await psycopg.AsyncConnection.connect(target.conninfo, autocommit=True)
                try:
                    await connection.execute("SELECT 1")
                finally:
                    await connection.close()
    except TimeoutError:
        raise StoreUnavailable(target.redacted, f"no answer within {within_s:g} s") from None
