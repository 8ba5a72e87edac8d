"""What the log needs from a database: one-transaction inserts, paged reads, stream versions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from caxton.shell.store.envelope import Row

TABLE = "stored_events"  # eventsourcing's default name, so its own tools can read the log
APPEND_ONLY = "the event log is append-only"

NewRow = tuple[str, int, str, bytearray]
"""An event to insert: stream, version, topic, state, in the order of eventsourcing's
INSERT (its `StoredEvent`'s fields; a tuple is what the driver takes, and costs less)."""


class Backend(Protocol):
    """A database behind eventsourcing's application recorder, plus an async reader."""

    where: str
    """The path or URL (without a password), for error messages."""

    commits_inline: bool
    """True: `insert` runs on the event-loop thread; False: in the writer thread."""

    def insert(self, batch: Sequence[NewRow]) -> Sequence[int]:
        """Inserts a batch in one transaction; returns the positions given, in order."""
        ...

    def last_versions(self, streams: Collection[str]) -> dict[str, int]:
        """The last version of each of `streams` that has events (in one query, or a few
        for very many streams). Called by the writer where it commits: on the loop thread
        if `commits_inline`, else in the writer thread."""
        ...

    async def rows(
        self, *, after: int, limit: int, stream: str | None = None, after_version: int = 0
    ) -> list[Row]:
        """Up to `limit` rows past position `after` in log order (within `stream` if given,
        past `after_version`)."""
        ...

    async def streams_before(self, *, before: int, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` (position, stream) pairs of the events between positions `after`
        and `before` (both excluded), the latest first: a walk back along the log."""
        ...

    async def last_position(self) -> int:
        """The highest committed position, 0 for an empty log."""
        ...

    async def close(self) -> None:
        """Closes every connection; called once the writer is drained."""
        ...
