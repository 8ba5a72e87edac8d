"""`EventLog`: the append-only log every fact goes into, and every state is folded from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence

from caxton.domain.events import Recorded
from caxton.domain.ids import conversation_stream
from caxton.shell.store.backend import Backend
from caxton.shell.store.envelope import Pending, recorded
from caxton.shell.store.errors import StoreError
from caxton.shell.store.integrity import IntegrityCheck, IntegrityReport
from caxton.shell.store.postgres import PostgresBackend
from caxton.shell.store.sqlite import SQLiteBackend
from caxton.shell.store.writer import GroupCommit

PAGE = 4096
"""Rows per read query: large enough that the per-query cost (a thread hop) vanishes."""

POLL_INTERVAL_S = 0.25
"""How often `follow` looks for events appended by another process; in-process
appends wake it at once."""


class EventLog:
    """The event log of one node: group-committed appends, ordered reads, live follow.

    Use it from one event loop: `append` resolves futures of that loop.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._committed = asyncio.Event()
        self._closed = False
        self._writer = GroupCommit(backend, on_commit=self._wake_followers)

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
        cls, store: str, *, synchronous: str = "NORMAL", exclusive: bool = False
    ) -> EventLog:
        """Opens (creating if need be) a SQLite file, or a `postgresql://` URL.

        `synchronous` is SQLite's durability: NORMAL survives a crashed or killed
        process, FULL also a power loss (an fsync per commit). `exclusive` refuses to
        open a PostgreSQL log that another exclusive opener holds (a server's own log;
        a SQLite file is guarded by the server's data-directory lock)."""
        backend: Backend
        if store.startswith(("postgresql://", "postgres://")):
            backend = await PostgresBackend.open(store, exclusive=exclusive)
        else:
            backend = await SQLiteBackend.open(store, synchronous=synchronous)
        return cls(backend)

    def observe_commits(self, callback: Callable[[int, int], None] | None) -> None:
        """`callback(events, commit_ns)` after each committed transaction (for metrics)."""
        self._writer.on_batch = callback

    def append(
        self, items: Sequence[Pending], *, new_streams: Collection[str] = (), now: bool = False
    ) -> asyncio.Future[list[Recorded]]:
        """Queues events without blocking; the future resolves once they are committed.

        Every append of one loop iteration is committed in a single transaction.
        `new_streams`: streams the caller knows are not in the log (an id it made at
        random), numbered from 1 without asking the log. `now`: these events are the
        whole transaction; a SQLite log commits them before returning (a done future)."""
        return self._writer.append(items, new_streams, now=now)

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

    async def pages(self, *, from_position: int = 1) -> AsyncIterator[list[Recorded]]:
        """The whole log from a position, a page at a time: for scans that must not hold
        every event in memory at once (the start-up fold)."""
        async for page in self._pages(from_position, None):
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
                    async with asyncio.timeout(POLL_INTERVAL_S):
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
        after = 0
        while True:
            rows = await self._backend.rows(after=after, limit=PAGE)
            for row in rows:
                check.feed(row)
            if len(rows) < PAGE:
                break
            after = rows[-1].position
        return check.report(await self._backend.last_position())

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

    def _wake_followers(self) -> None:
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()

    async def _pages(
        self, from_position: int, conversation_id: str | None, *, stream: str | None = None
    ) -> AsyncIterator[list[Recorded]]:
        after = from_position - 1
        version = 0
        if conversation_id is not None:
            stream = conversation_stream(conversation_id)
        while True:
            rows = await self._backend.rows(
                after=after, limit=PAGE, stream=stream, after_version=version
            )
            yield [recorded(row, self._backend.where) for row in rows]
            if len(rows) < PAGE:
                return
            after, version = rows[-1].position, rows[-1].version
