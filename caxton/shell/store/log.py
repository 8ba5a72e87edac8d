"""`EventLog`: the append-only log every fact goes into, and every state is folded from."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from types import MappingProxyType

from caxton.domain.events import Recorded
from caxton.domain.ids import conversation_stream
from caxton.shell.store.backend import Backend, Claim, Fence, Lease
from caxton.shell.store.envelope import Pending, recorded
from caxton.shell.store.errors import StoreError, StoreUnavailable
from caxton.shell.store.integrity import IntegrityCheck, IntegrityReport
from caxton.shell.store.postgres import PostgresBackend, SharedPostgresBackend
from caxton.shell.store.sqlite import SQLiteBackend
from caxton.shell.store.writer import GroupCommit

PAGE = 4096
"""Rows per read query: large enough that the per-query cost (a thread hop) vanishes."""

POLL_INTERVAL_S = 0.25
"""How often `follow` looks for events appended by another process; in-process
appends wake it at once."""

SHARED_POLL_INTERVAL_S = 5.0
"""The same on a shared log, where every node's commits wake followers (LISTEN/NOTIFY):
only a safety net, for a notification lost with its connection."""

_NO_FENCE: Mapping[int, int] = MappingProxyType({})


class EventLog:
    """The event log of one node: group-committed appends, ordered reads, live follow.

    Use it from one event loop: `append` resolves futures of that loop.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._committed = asyncio.Event()
        self._closed = False
        self._cluster = backend if isinstance(backend, SharedPostgresBackend) else None
        self._writer = GroupCommit(backend, on_commit=self._wake_followers, shared=self._cluster)
        if self._cluster is not None:
            self._cluster.watch(self._wake_followers)

    @property
    def shared(self) -> bool:
        """True for a cluster's log: other processes append to it, fenced by leases."""
        return self._cluster is not None

    @property
    def where(self) -> str:
        """The log's location for people: a file path, or the URL with its password hidden."""
        return self._backend.where

    @property
    def fault(self) -> StoreError | None:
        """Why the last append failed (a full disk, say), or None: the log takes appends.
        Cleared by the next commit: after SQLITE_FULL, SQLite rolls the transaction back
        (its WAL frames without a commit frame are ignored), so room again is enough."""
        return self._writer.fault

    @classmethod
    async def open(
        cls,
        store: str,
        *,
        synchronous: str = "NORMAL",
        exclusive: bool = False,
        shared: bool = False,
        origin: str = "",
    ) -> EventLog:
        """Opens (creating if need be) a SQLite file, or a `postgresql://` URL.

        `synchronous` is SQLite's durability: NORMAL survives a crashed or killed
        process, FULL also a power loss (an fsync per commit). `exclusive` refuses to
        open a PostgreSQL log that another exclusive opener holds (a server's own log;
        a SQLite file is guarded by the server's data-directory lock). `shared` opens
        a cluster's log, which every node appends to (PostgreSQL only), with its lease
        table (`claim`, `renew`, `release`, `leases`, fenced appends); `origin` names the
        node of the cluster that opens it, and every event it appends is stamped with it
        (`Recorded.node`)."""
        if shared and exclusive:
            raise ValueError("a shared log is every node's: it cannot be opened exclusively")
        backend: Backend
        if store.startswith(("postgresql://", "postgres://")):
            backend = await PostgresBackend.open(store, exclusive=exclusive, shared=shared)
        elif shared:
            raise StoreUnavailable(
                os.path.abspath(store),
                "a shared log (a cluster's) must be in PostgreSQL (a postgresql:// URL): "
                "every node appends to it, and a SQLite file serves one process",
            )
        else:
            backend = await SQLiteBackend.open(store, synchronous=synchronous)
        log = cls(backend)
        log._writer.origin = origin
        return log

    def observe_commits(self, callback: Callable[[int, int], None] | None) -> None:
        """`callback(events, commit_ns)` after each committed transaction (for metrics)."""
        self._writer.on_batch = callback

    def append(
        self,
        items: Sequence[Pending],
        *,
        new_streams: Collection[str] = (),
        now: bool = False,
        fence: Mapping[int, int] = _NO_FENCE,
    ) -> asyncio.Future[list[Recorded]]:
        """Queues events without blocking; the future resolves once they are committed.

        Every append of one loop iteration is committed in a single transaction (on a
        shared log, one per run of appends with the same fence). `new_streams`: streams
        the caller knows are not in the log (an id it made at random), numbered from 1
        without asking the log. `now`: these events are the whole transaction; a SQLite
        log commits them before returning (a done future).

        On a shared log the database numbers every stream (`new_streams` changes
        nothing), and `fence` may name the {shard: epoch} leases these events depend
        on: if any shard moved to another epoch, the future fails with `LeaseLost` and
        nothing of the append is written; appends without that fence still commit."""
        if fence:
            return self._writer.append(items, new_streams, now=now, guard=self._fence(fence))
        return self._writer.append(items, new_streams, now=now)

    async def claim(
        self, shard: int, node: str, seen_epoch: int, ttl_s: float, items: Sequence[Pending]
    ) -> list[Recorded]:
        """Takes `shard`'s lease for `ttl_s` at epoch `seen_epoch` + 1 and appends
        `items` (its `ShardClaimed`) in the same transaction: if the lease is still at
        `seen_epoch` and unowned, `node`'s, or expired on PostgreSQL's clock. Else
        `ClaimRefused`, and nothing is written."""
        self._require_shared("claim")
        if not items:
            raise ValueError("a claim commits with its events (the ShardClaimed): none given")
        guard = Claim(shard, node, seen_epoch, ttl_s)
        return await self._writer.append(items, guard=guard)

    async def renew(self, node: str, held: Mapping[int, int], ttl_s: float) -> set[int]:
        """Extends by `ttl_s` the leases `node` still holds at these {shard: epoch}; the
        shards renewed (one missing was claimed by another node, or released). Its own
        connection: it never waits behind appends."""
        return await self._require_shared("renew").renew(node, held, ttl_s)

    async def release(
        self, node: str, held: Mapping[int, int], items: Sequence[Pending] = ()
    ) -> list[Recorded]:
        """Expires now the leases `node` holds at these {shard: epoch}: another node may
        claim them at once (a graceful stop, a rebalance). With `items` (their
        `ShardReleased`), in one transaction with them, fenced by those epochs: the log
        says a shard was given up exactly when it was, or neither happens."""
        shared = self._require_shared("release")
        if not items:
            await shared.release(node, held)
            return []
        guard = Fence(tuple(sorted(held.items())), release=node)
        return await self._writer.append(items, guard=guard)

    async def leases(self) -> dict[int, Lease]:
        """Every shard's lease, by shard."""
        return await self._require_shared("leases").leases()

    async def put_component(self, digest: str, wasm: bytes) -> None:
        """Keeps a deployed component's bytes beside a shared log, for the node that will
        run its agent (the holder of its shard may be another node)."""
        await self._require_shared("put_component").put_component(digest, wasm)

    async def get_component(self, digest: str) -> bytes | None:
        """A component's bytes that a node put beside the shared log, or None."""
        return await self._require_shared("get_component").get_component(digest)

    def next_commit(self) -> asyncio.Event:
        """An event set at the next commit after this call: this process's, or another
        node's on a shared log (and when the log closes). Take it before reading the
        log and wait on it after: a commit made in between is not missed."""
        return self._committed

    async def wait_for_commit(self) -> None:
        """Returns at the next commit after this call (as `next_commit`); a follower that
        reads between its waits should take `next_commit()` before reading instead."""
        await self._committed.wait()

    async def read(
        self,
        *,
        from_position: int = 1,
        conversation_id: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> list[Recorded]:
        """Committed events in log order, from a position, of one conversation's stream,
        recorded at or after `since_ms`, at most `limit` of them."""
        found: list[Recorded] = []
        async for page in self._pages(from_position, conversation_id):
            for record in page:
                if since_ms is None or record.at >= since_ms:
                    found.append(record)
                    if limit is not None and len(found) >= limit:
                        return found
        return found

    async def read_streams(
        self, streams: Sequence[str], *, to_position: int | None = None
    ) -> list[Recorded]:
        """The committed events of some streams (`agent:x`, `conversation:y`), merged in
        log order, up to a position: one indexed walk per stream, never a log scan."""
        found: list[Recorded] = []
        for stream in dict.fromkeys(streams):
            async for page in self._pages(1, None, stream=stream):
                found.extend(r for r in page if to_position is None or r.position <= to_position)
                if page and to_position is not None and page[-1].position > to_position:
                    break
        found.sort(key=lambda r: r.position)
        return found

    async def pages(
        self, *, from_position: int = 1, to_position: int | None = None
    ) -> AsyncIterator[list[Recorded]]:
        """The whole log from a position (up to one), a page at a time: for scans that
        must not hold every event in memory at once (the start-up fold, a rebuild)."""
        async for page in self._pages(from_position, None, to_position=to_position):
            if page:
                yield page

    async def follow(
        self, *, from_position: int = 1, conversation_id: str | None = None
    ) -> AsyncIterator[Recorded]:
        """Yields the committed events from a position, then each new one as it commits,
        until the log is closed."""
        after = from_position - 1
        version = 0
        stream = None if conversation_id is None else conversation_stream(conversation_id)
        poll_s = POLL_INTERVAL_S if self._cluster is None else SHARED_POLL_INTERVAL_S
        while not self._closed:
            committed = self._committed  # taken before reading, so no commit is missed
            rows = await self._backend.rows(
                after=after, limit=PAGE, stream=stream, after_version=version
            )
            for row in rows:
                yield recorded(row, self._backend.where)
                after, version = row.position, row.version
            if len(rows) < PAGE and not self._closed:
                try:
                    async with asyncio.timeout(poll_s):
                        await committed.wait()
                except TimeoutError:
                    pass  # another process may have appended: look again

    async def last_position(self) -> int:
        """The position of the last committed event, 0 when the log is empty."""
        return await self._backend.last_position()

    async def position_at(self, at_ms: int) -> int:
        """The first position recorded at or after `at_ms` (one past the last if none).

        A binary search, a point read per step: positions and times grow together (a
        clock set back makes the answer only as wrong as the clock was)."""
        low, high = 1, await self.last_position() + 1
        while low < high:
            middle = (low + high) // 2
            rows = await self._backend.rows(after=middle - 1, limit=1)
            if rows and recorded(rows[0], self._backend.where).at < at_ms:
                low = rows[0].position + 1
            else:
                high = middle
        return low

    async def active_streams(self, prefix: str, *, from_position: int, limit: int) -> list[str]:
        """Up to `limit` streams named `prefix…` (say `conversation:`) with an event at
        or after `from_position`, the most recently active first.

        A walk back from the end of the log that stops once it has found `limit`: its
        cost is how far back that is, not the size of the log (nor of the window)."""
        found: dict[str, None] = {}
        before = await self.last_position() + 1
        while len(found) < limit:
            rows = await self._backend.streams_before(
                before=before, after=from_position - 1, limit=PAGE
            )
            for _, stream in rows:
                if stream.startswith(prefix):
                    found.setdefault(stream, None)
                    if len(found) == limit:
                        break
            if len(rows) < PAGE:
                break
            before = rows[-1][0]
        return list(found)

    async def check_integrity(self) -> IntegrityReport:
        """Checks positions, stream versions and every payload; raises `LogCorrupted`."""
        check = IntegrityCheck(self._backend.where)
        # The end first: on a shared log other nodes append while this one checks, and
        # what they add after it is not this check's to find.
        last = await self._backend.last_position()
        after = 0
        while after < last:
            limit = min(PAGE, last - after)
            rows = await self._backend.rows(after=after, limit=limit)
            for row in rows:
                check.feed(row)
            if len(rows) < limit:
                break
            after = rows[-1].position
        return check.report(last)

    async def close(self) -> None:
        """Commits what is queued, wakes followers (they end), closes the database."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writer.close()
        finally:
            self._wake_followers()
            await self._backend.close()

    def _fence(self, fence: Mapping[int, int]) -> Fence:
        self._require_shared("a fenced append")
        return Fence(tuple(sorted(fence.items())))

    def _require_shared(self, what: str) -> SharedPostgresBackend:
        if self._cluster is None:
            raise ValueError(f"{what} needs a shared log (EventLog.open(..., shared=True))")
        return self._cluster

    def _wake_followers(self) -> None:
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()

    async def _pages(
        self,
        from_position: int,
        conversation_id: str | None,
        *,
        stream: str | None = None,
        to_position: int | None = None,
    ) -> AsyncIterator[list[Recorded]]:
        after = from_position - 1
        version = 0
        if conversation_id is not None:
            stream = conversation_stream(conversation_id)
        while True:
            # positions have no gaps: up to a position, no row past it is read and decoded
            limit = PAGE if to_position is None else min(PAGE, to_position - after)
            if limit <= 0:
                return
            rows = await self._backend.rows(
                after=after, limit=limit, stream=stream, after_version=version
            )
            yield [recorded(row, self._backend.where) for row in rows]
            if len(rows) < limit:
                return
            after, version = rows[-1].position, rows[-1].version
