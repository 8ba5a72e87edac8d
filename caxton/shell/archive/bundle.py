"""Bundles: one SQLite file holding a conversation's events (at their original positions),
the components of the agents it involved (by sha256), and a description.

A bundle is an event log in the server's own format plus two tables, so every reader
of logs reads it; `import_bundle` turns one into a data directory to browse.

    stored_events       the log's table (eventsourcing's), rowid = original position
    caxton_components   digest TEXT PRIMARY KEY, wasm BLOB
    caxton_bundle       key TEXT PRIMARY KEY, value TEXT (conversation, source, ...)
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from caxton.domain.events import Recorded
from caxton.shell.store import EventLog, Pending, StoreError
from caxton.shell.store.backend import TABLE
from caxton.shell.store.envelope import prepare

FORMAT = "caxton-bundle/1"


class BundleError(Exception):
    """A bundle that cannot be written, read or imported; the message says why."""


# events keep their original positions (rowid) in a bundle and in what it is imported to
_INSERT_AT_POSITION = (
    f"INSERT INTO {TABLE} (rowid, originator_id, originator_version, topic, state) "
    "VALUES (?, ?, ?, ?, ?)"
)


async def write_bundle(
    path: Path,
    history: Iterable[Recorded],
    components: Mapping[str, bytes],
    info: Mapping[str, str],
) -> None:
    """Writes a new bundle file (refusing to overwrite one that exists)."""
    if path.exists():
        raise BundleError(f"{path} already exists; choose another file or remove it")
    if not path.parent.is_dir():
        raise BundleError(f"{path.parent} is not a directory")
    try:
        await _write(path, history, components, info)
    except (OSError, sqlite3.Error, StoreError) as exc:
        raise BundleError(f"{path}: cannot write the bundle ({exc})") from None


async def _write(
    path: Path,
    history: Iterable[Recorded],
    components: Mapping[str, bytes],
    info: Mapping[str, str],
) -> None:
    with tempfile.TemporaryDirectory(prefix="caxton-bundle-", dir=path.parent) as scratch:
        draft = Path(scratch) / "bundle.db"
        await _create_log(draft)
        with _connected(draft) as db:
            _insert(db, history)
            db.execute("CREATE TABLE caxton_components (digest TEXT PRIMARY KEY, wasm BLOB)")
            for digest, wasm in sorted(components.items()):
                if hashlib.sha256(wasm).hexdigest() != digest:
                    raise BundleError(f"component {digest} does not match its digest")
                db.execute("INSERT INTO caxton_components VALUES (?, ?)", (digest, wasm))
            _write_info(db, {"format": FORMAT, **info})
        # One self-contained file (no -wal beside it), compacted, then renamed into place:
        # a full disk left a truncated file at `path`, which the next export refused
        finished = Path(scratch) / "finished.db"
        with _connected(draft) as db:
            db.execute("VACUUM INTO ?", (str(finished),))
        finished.replace(path)


async def import_bundle(bundle: Path, data_dir: Path) -> dict[str, str]:
    """Makes `data_dir` (new or empty) a browsable log of the bundle: `events.db` with the
    events at their original positions, the components where a server keeps them.
    Returns the bundle's description."""
    if not bundle.is_file():
        raise BundleError(f"{bundle}: no such file")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BundleError(f"{data_dir} is not empty; import into a new or empty directory")
    try:
        with _connected(f"file:{bundle}?mode=ro") as source:
            info = dict(source.execute("SELECT key, value FROM caxton_bundle").fetchall())
            if info.get("format") != FORMAT:
                raise BundleError(f"{bundle}: not a Caxton bundle ({info.get('format')!r})")
            rows = source.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {TABLE} "
                "ORDER BY rowid"
            ).fetchall()
            components = source.execute("SELECT digest, wasm FROM caxton_components").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BundleError(f"{bundle}: not a Caxton bundle ({exc})") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "events.db"
    try:
        await _create_log(target)
        with _connected(target) as db:
            db.executemany(_INSERT_AT_POSITION, rows)
            _write_info(db, {**info, "imported_from": str(bundle.resolve())})
        store = data_dir / "components" / "components"
        store.mkdir(parents=True, exist_ok=True)
        for digest, wasm in components:
            (store / f"{digest}.wasm").write_bytes(wasm)
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return info


def imported_from(events_db: Path) -> str:
    """The bundle a log was imported from, or "" for a server's own log."""
    if not events_db.is_file():
        return ""
    try:
        with _connected(f"file:{events_db}?mode=ro") as db:
            row = db.execute(
                "SELECT value FROM caxton_bundle WHERE key = 'conversation'"
            ).fetchone()
    except sqlite3.DatabaseError:
        return ""
    return str(row[0]) if row else ""


async def _create_log(path: Path) -> None:
    """An empty log with the server's schema and append-only triggers."""
    log = await EventLog.open(str(path))
    await log.close()


def _insert(db: sqlite3.Connection, history: Iterable[Recorded]) -> None:
    seen: set[int] = set()
    for r in sorted(history, key=lambda r: r.position):
        if r.position in seen:
            continue
        seen.add(r.position)
        prepared = prepare(Pending(r.event, r.at, r.traceparent), r.node)
        db.execute(
            _INSERT_AT_POSITION, (r.position, r.stream, r.version, prepared.topic, prepared.state)
        )


def _write_info(db: sqlite3.Connection, info: Mapping[str, str]) -> None:
    db.execute("CREATE TABLE caxton_bundle (key TEXT PRIMARY KEY, value TEXT)")
    db.executemany("INSERT INTO caxton_bundle VALUES (?, ?)", sorted(info.items()))


@contextmanager
def _connected(where: Path | str) -> Iterator[sqlite3.Connection]:
    """A connection committed on success and always closed (sqlite3's own context
    manager only commits, leaving the file locked until garbage collection)."""
    db = sqlite3.connect(where, uri=isinstance(where, str))
    try:
        with db:
            yield db
    finally:
        db.close()
