"""A read-only view of a SQLite event log: a server's `events.db` (even while the server
runs: WAL readers never block the writer), an imported log, or a bundle."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from caxton.domain.events import Recorded
from caxton.shell.store.backend import TABLE
from caxton.shell.store.envelope import StoredRow, recorded

PAGE = 4096
_COLUMNS = "rowid, originator_id, originator_version, topic, state"


class LogFileError(Exception):
    """A file that is not a readable Caxton event log; the message says why."""


class LogFile:
    """Reads events and, in a bundle, components, without ever writing."""

    def __init__(self, path: Path, connection: aiosqlite.Connection) -> None:
        self.path = path
        self.where = str(path)
        self._db = connection

    @classmethod
    async def open(cls, path: Path) -> LogFile:
        if not path.is_file():
            raise LogFileError(f"{path}: no such file")
        try:
            connection = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise LogFileError(f"{path}: cannot open ({exc})") from None
        log = cls(path, connection)
        if not await log._has_table(TABLE):
            await connection.close()
            raise LogFileError(f"{path}: not a Caxton event log (no {TABLE} table)")
        return log

    async def __aenter__(self) -> LogFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._db.close()

    async def stream(self, stream: str) -> list[Recorded]:
        """One stream's events in order (the primary key walks it)."""
        query = (
            f"SELECT {_COLUMNS} FROM {TABLE} WHERE originator_id = ? ORDER BY originator_version"
        )
        return [recorded(r, self.where) for r in await self._rows(query, (stream,))]

    async def streams(self, streams: Sequence[str], *, to_position: int = 0) -> list[Recorded]:
        """Some streams merged in log order, up to a position (0: all)."""
        found = [r for s in dict.fromkeys(streams) for r in await self.stream(s)]
        if to_position:
            found = [r for r in found if r.position <= to_position]
        return sorted(found, key=lambda r: r.position)

    async def read_streams(
        self, streams: Sequence[str], *, to_position: int | None = None
    ) -> list[Recorded]:
        """`streams`, as the server's log names it (`caxton.shell.runtime.memory.History`)."""
        return await self.streams(streams, to_position=to_position or 0)

    async def pages(
        self, *, from_position: int = 1, to_position: int | None = None
    ) -> AsyncIterator[list[Recorded]]:
        """The whole log from a position (up to one), a page at a time."""
        after = from_position - 1
        query = f"SELECT {_COLUMNS} FROM {TABLE} WHERE rowid > ? ORDER BY rowid LIMIT ?"
        while True:
            limit = PAGE if to_position is None else min(PAGE, to_position - after)
            if limit <= 0:
                return
            rows = await self._rows(query, (after, limit))
            if rows:
                yield [recorded(r, self.where) for r in rows]
            if len(rows) < limit:
                return
            after = rows[-1][0]

    async def last_position(self) -> int:
        rows = await self._fetch(f"SELECT MAX(rowid) FROM {TABLE}", ())
        return int(rows[0][0] or 0)

    async def component(self, digest: str) -> bytes | None:
        """A component packed in a bundle; none in a plain log."""
        if not await self._has_table("caxton_components"):
            return None
        rows = await self._fetch("SELECT wasm FROM caxton_components WHERE digest = ?", (digest,))
        return bytes(rows[0][0]) if rows else None

    async def bundle_info(self) -> dict[str, str]:
        """A bundle's description (conversation, source, time); empty for a plain log."""
        if not await self._has_table("caxton_bundle"):
            return {}
        return {k: v for k, v in await self._fetch("SELECT key, value FROM caxton_bundle", ())}

    async def _has_table(self, name: str) -> bool:
        rows = await self._fetch(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        )
        return bool(rows)

    async def _rows(self, query: str, params: tuple[object, ...]) -> list[StoredRow]:
        """Rows of `_COLUMNS`, as sqlite3 gives them: plain tuples, no `Row` per event."""
        try:
            return list(await self._db.execute_fetchall(query, params))  # type: ignore[arg-type]
        except sqlite3.DatabaseError as exc:
            raise LogFileError(f"{self.path}: cannot read ({exc})") from None

    async def _fetch(self, query: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in await self._db.execute_fetchall(query, params)]
        except sqlite3.DatabaseError as exc:
            raise LogFileError(f"{self.path}: cannot read ({exc})") from None
