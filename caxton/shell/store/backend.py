"""What the log needs from a database: one-transaction inserts, paged reads, stream versions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from caxton.shell.store.envelope import Row

TABLE = "stored_events"  # eventsourcing's default name, so its own tools can read the log
APPEND_ONLY = "the event log is append-only"

NewRow = tuple[str, int, str, bytearray]
"""An event to insert: stream, version, topic, state, in the order of eventsourcing's
INSERT (its `StoredEvent`'s fields; a tuple is what the driver takes, and costs less)."""


LEASES = "caxton_leases"
"""A shared log's lease table, beside its events: a row per shard (owner, epoch, expiry)."""
COMPONENTS = "caxton_components"
"""A shared log's deployed WebAssembly components, by digest, for every node to fetch."""


@dataclass(frozen=True, slots=True)
class Lease:
    """One shard's lease as the lease table holds it, on PostgreSQL's clock."""

    shard: int
    owner: str
    """The node that claimed it last; "" if none ever did."""
    epoch: int
    """Raised by each claim; appends fenced at a lower epoch are refused."""
    expires_in_s: float
    """Negative once expired; minus infinity when released or never claimed."""


@dataclass(frozen=True, slots=True)
class Fence:
    """An append's condition: these (shard, epoch) pairs, sorted, are all still current.
    With `release`, that node's leases on them expire in the same transaction (a node
    giving shards up records their `ShardReleased` and frees them at once)."""

    held: tuple[tuple[int, int], ...]
    release: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Claim:
    """An append's condition: `node` takes `shard` at `seen_epoch` + 1, if the lease is
    still at `seen_epoch` and unowned, `node`'s, or expired. Two claims are never equal,
    so never share a transaction."""

    shard: int
    node: str
    seen_epoch: int
    ttl_s: float


Guard = Fence | Claim
"""What a shared log checks after its table lock, before inserting: the append's or
the claim's lease condition."""


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


class SharedBackend(Backend, Protocol):
    """A backend several nodes append to at once: the log is numbered in the database,
    under its table lock, and appends may carry a lease condition."""

    def insert_numbered(
        self, batch: Sequence[NewRow], guard: Guard | None
    ) -> tuple[list[int], list[int]]:
        """Inserts a batch in one transaction, each event at the next version of its
        stream as the log holds it (the versions in `batch` are ignored), once `guard`
        holds; returns the positions and the versions given, in order. Raises
        `LeaseLost` or `ClaimRefused` when `guard` fails: nothing is written."""
        ...

    def watch(self, wake: Callable[[], None]) -> None:
        """Calls `wake()` on the loop whenever any node may have committed."""
        ...

    async def leases(self) -> dict[int, Lease]:
        """Every shard's lease."""
        ...

    async def renew(self, node: str, held: Mapping[int, int], ttl_s: float) -> set[int]:
        """Extends the leases `node` still holds at these epochs; returns their shards."""
        ...

    async def release(self, node: str, held: Mapping[int, int]) -> None:
        """Expires the leases `node` holds at these epochs now."""
        ...

    async def put_component(self, digest: str, wasm: bytes) -> None:
        """Keeps a component's bytes under its digest (once: the same digest, the same bytes)."""
        ...

    async def get_component(self, digest: str) -> bytes | None:
        """A component's bytes, or None if no node put them."""
        ...
