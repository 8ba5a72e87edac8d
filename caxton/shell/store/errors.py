"""The event log's exception tree, and the one place where driver errors become it.

    StoreError
    ├── StoreUnavailable    the log cannot be opened or reached (names the path or URL)
    ├── LogCorrupted        what the log holds breaks an invariant (says what and where)
    ├── AppendRejected      the database refused a write (append-only, a version clash)
    ├── LeaseLost           a fenced append's shard moved to a higher epoch: nothing written
    └── ClaimRefused        a shard's lease was not free at the epoch seen: nothing written

sqlite3, psycopg and eventsourcing errors are translated by `translate`, nowhere else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing import persistence as es


class StoreError(Exception):
    """Base of every error the event log raises; `where` is the path or URL."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class StoreUnavailable(StoreError):
    """The log cannot be opened, reached or written to (or it is closed)."""


class LogCorrupted(StoreError):
    """Stored data breaks an invariant; `position` and `stream` locate it when known."""

    def __init__(
        self, where: str, reason: str, *, position: int | None = None, stream: str = ""
    ) -> None:
        located = reason
        if position is not None:
            at = f"position {position}" + (f" (stream {stream!r})" if stream else "")
            located = f"{at}: {reason}"
        super().__init__(where, located)
        self.position = position
        self.stream = stream


class AppendRejected(StoreError):
    """The database refused an append; nothing of the batch was written."""


class LeaseLost(StoreError):
    """A fenced append named a shard epoch that is no longer current: another node claimed
    the shard since, and nothing of the append was written. The log itself is sound."""

    def __init__(self, where: str, shards: frozenset[int], reason: str) -> None:
        super().__init__(where, reason)
        self.shards = shards


class ClaimRefused(StoreError):
    """A claim found the shard's lease moved past the epoch seen, or live and held by
    another node; neither the claim nor its events were written."""

    def __init__(self, where: str, shard: int, reason: str) -> None:
        super().__init__(where, reason)
        self.shard = shard


LEASE_LOST = "CXF01"
"""The SQLSTATE the lease table's fence check raises (class CX: ours, unknown to psycopg)."""
CLAIM_REFUSED = "CXF02"
"""The SQLSTATE a refused claim raises."""


_UNAVAILABLE_SQLITE = frozenset(
    {
        "SQLITE_CANTOPEN",
        "SQLITE_PERM",
        "SQLITE_READONLY",
        "SQLITE_BUSY",
        "SQLITE_LOCKED",
        "SQLITE_FULL",
        "SQLITE_IOERR",
        "SQLITE_NOTADB",
        "SQLITE_AUTH",
        "SQLITE_NOLFS",
    }
)
_HINTS = {
    "SQLITE_CANTOPEN": "check that the directory exists and is writable",
    "SQLITE_READONLY": "the file or its directory is read-only",
    "SQLITE_NOTADB": "this file is not an SQLite database",
    "SQLITE_BUSY": "another process holds the write lock; is a second server running?",
    "SQLITE_FULL": "the disk is full",
    # SQLite says FULL for its own files, but this for the -shm file beside the log
    "SQLITE_IOERR_SHMSIZE": "the log's index (its -shm file) cannot grow: is the disk full?",
}


def _root(exc: BaseException) -> BaseException:
    """The driver error under eventsourcing's wrappers (they chain it as the cause)."""
    seen = exc
    while isinstance(seen, es.PersistenceError) and seen.__cause__ is not None:
        seen = seen.__cause__
    return seen


def _from_sqlite(e: sqlite3.Error, where: str) -> StoreError:
    name = getattr(e, "sqlite_errorname", "") or ""
    base = "_".join(name.split("_")[:2])  # SQLITE_CONSTRAINT_TRIGGER -> SQLITE_CONSTRAINT
    hint = _HINTS.get(name) or _HINTS.get(base, "")
    reason = f"{e} ({name})" if name else str(e)
    if hint:
        reason = f"{reason}: {hint}"
    if base == "SQLITE_CONSTRAINT":
        return AppendRejected(where, reason)
    if base == "SQLITE_CORRUPT":
        return LogCorrupted(where, reason)
    if base in _UNAVAILABLE_SQLITE or isinstance(e, sqlite3.OperationalError):
        return StoreUnavailable(where, reason)
    return StoreError(where, reason)


def _from_psycopg(e: psycopg.Error, where: str) -> StoreError:
    reason = str(e).strip() or type(e).__name__
    if e.sqlstate in (LEASE_LOST, CLAIM_REFUSED):
        return _from_lease_check(e, where)
    if isinstance(e, psycopg.errors.DataCorrupted | psycopg.errors.IndexCorrupted):
        return LogCorrupted(where, reason)
    if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(where, reason)
    if isinstance(
        e,
        psycopg.IntegrityError
        | psycopg.errors.RaiseException
        | psycopg.errors.InsufficientPrivilege
        | psycopg.errors.ReadOnlySqlTransaction,
    ):
        return AppendRejected(where, reason)
    return StoreError(where, reason)


def _from_lease_check(e: psycopg.Error, where: str) -> StoreError:
    """LeaseLost or ClaimRefused, from the DETAIL the lease table's functions give: the
    shards concerned, comma-separated."""
    reason = (e.diag.message_primary or str(e)).strip()
    shards = frozenset(int(s) for s in (e.diag.message_detail or "").split(",") if s)
    if e.sqlstate == LEASE_LOST:
        return LeaseLost(where, shards, reason)
    return ClaimRefused(where, min(shards, default=-1), reason)


def translate(exc: BaseException, where: str) -> StoreError | None:
    """The `StoreError` for a storage-layer error, or None if `exc` is not one (a bug)."""
    if isinstance(exc, StoreError):
        return exc
    root = _root(exc)
    if isinstance(root, sqlite3.Error):
        return _from_sqlite(root, where)
    if isinstance(root, psycopg.Error):
        return _from_psycopg(root, where)
    if isinstance(root, es.IntegrityError):
        return AppendRejected(where, str(root))
    if isinstance(
        root,
        es.ConnectionPoolClosedError | es.OperationalError | es.InterfaceError | OSError,
    ):
        return StoreUnavailable(where, str(root) or type(root).__name__)
    if isinstance(root, es.PersistenceError):
        return StoreError(where, str(root))
    return None


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Runs a block, re-raising storage-layer errors as `StoreError`s about `where`."""
    try:
        yield
    except StoreError:
        raise
    except Exception as e:
        mapped = translate(e, where)
        if mapped is None:
            raise
        raise mapped from e
