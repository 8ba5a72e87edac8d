"""Event log scenarios: append rate (batched, durable) and fold rate, each beside its floor.

Append: Caxton's `EventLog.append` with group commit (one transaction per loop
iteration), WAL, synchronous=NORMAL, the events of request → reply conversations.
Floor: bare `sqlite3` batched inserts of the same stored bytes into a table of the same
shape in the same directory, same pragmas, same batch size. Peer: the eventsourcing
library's own `Application`, saving one event per new aggregate.

Fold: reading the log page by page, decoding each event into the domain's dataclasses
and folding the world in place (`LiveWorld`), as a server's start-up does. Floor: reading
the same rows (the same five columns: position, stream, version, type, payload) with
`sqlite3`, `orjson.loads` of each payload and a dict-based fold counting messages per
conversation and agent. Both run with the cyclic garbage collector paused, as the
server's start-up fold runs. The target, ≥ 100,000 events/s (issue 13), is taken as its
share of the floor measured with it: 100,000 / 165,683 ≈ 0.6.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.scenario import Result, median, repeat, result, run_async
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    Event,
    Limits,
    MessageHandled,
    MessageSent,
)
from caxton.domain.world import LiveWorld
from caxton.shell.runtime.collector import paused_collector
from caxton.shell.store import EventLog, Pending
from caxton.shell.store.envelope import prepare

BATCH = 100
FOLD_SHARE_OF_FLOOR = 0.6
"""The fold's target as a share of the bare floor: 100,000 events/s against the floor of
165,683 events/s measured beside the 27,058 events/s of issue 13."""
_COLUMNS = "rowid, originator_id, originator_version, topic, state"


class Conversation(Aggregate):
    """The eventsourcing peer's aggregate: one `Opened` event each."""

    @event("Opened")
    def __init__(self, content: str) -> None:
        self.content = content


def workload(n: int) -> list[Event]:
    """An agent deployed and started, then n/2 requests each sent and handled."""
    events: list[Event] = [
        AgentDeployed(
            agent="echo",
            component="sha256:" + "0" * 64,
            component_size=1795,
            replicas=1,
            capabilities=(),
            limits=Limits(),
        ),
        AgentStarted(agent="echo", replica=0, incarnation=1),
    ]
    for i in range(n // 2):
        message = AclMessage(
            id=f"m{i:08d}",
            performative=Performative.REQUEST,
            sender="client:bench",
            receivers=("echo",),
            content='{"order": {"items": [1, 2, 3]}}',
            protocol="fipa-request",
            conversation_id=f"c{i % 1000:04d}",
            reply_with=f"m{i:08d}",
        )
        events.append(MessageSent(message=message, deliveries=("echo#0",)))
        events.append(
            MessageHandled(
                message_id=message.id,
                conversation_id=message.conversation_id,
                agent="echo",
                replica=0,
                duration_us=40,
            )
        )
    return events


async def append_caxton(directory: Path, events: list[Event]) -> float:
    """Events/s appended through the log, BATCH per append, all awaited."""
    log = await EventLog.open(str(directory / "events.db"))
    pending = [Pending(event=e, at=1_700_000_000_000) for e in events]
    start = time.perf_counter()
    for offset in range(0, len(pending), BATCH):
        await log.append(pending[offset : offset + BATCH])
    elapsed = time.perf_counter() - start
    await log.close()
    return len(events) / elapsed


def append_bare(directory: Path, events: list[Event]) -> float:
    """Events/s of bare sqlite3 inserts of the same bytes, BATCH per transaction."""
    rows = [prepare(Pending(event=e, at=1_700_000_000_000)) for e in events]
    connection = sqlite3.connect(directory / "bare.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
        "state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    versions: dict[str, int] = {}
    start = time.perf_counter()
    for offset in range(0, len(rows), BATCH):
        batch = []
        for row in rows[offset : offset + BATCH]:
            version = versions[row.stream] = versions.get(row.stream, 0) + 1
            batch.append((row.stream, version, row.topic, row.state))
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", batch)
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return len(rows) / elapsed


def append_eventsourcing(directory: Path, n: int) -> float:
    """Events/s of eventsourcing's Application saving one new aggregate (one event) at a time."""
    app: Application[UUID] = Application(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(directory / "es.db"),
        }
    )
    start = time.perf_counter()
    for _ in range(n):
        app.save(Conversation(content='{"order": {"items": [1, 2, 3]}}'))
    elapsed = time.perf_counter() - start
    app.close()
    return n / elapsed


async def fold_caxton(directory: Path, events: list[Event]) -> float:
    """Events/s read page by page, decoded and folded into the world."""
    log = await EventLog.open(str(directory / "events.db"))
    for offset in range(0, len(events), 1000):
        await log.append([Pending(event=e, at=1) for e in events[offset : offset + 1000]])
    with paused_collector():
        start = time.perf_counter()
        live, count = LiveWorld(), 0
        async for page in log.pages():
            for recorded in page:
                live.apply(recorded)
            count += len(page)
        world = live.snapshot()
        elapsed = time.perf_counter() - start
    assert count == len(events) and "echo" in world.agents
    await log.close()
    return count / elapsed


def fold_bare(directory: Path) -> float:
    """Events/s of the same rows read with sqlite3, orjson-decoded and folded into dicts."""
    connection = sqlite3.connect(directory / "events.db")
    with paused_collector():
        start = time.perf_counter()
        per_conversation: dict[str, int] = {}
        handled: dict[str, int] = {}
        count = 0
        # The same five columns the log reads: a fold must know each event's position,
        # stream and version, not only its type and payload.
        query = f"SELECT {_COLUMNS} FROM stored_events ORDER BY rowid"
        for _position, _stream, _version, topic, state in connection.execute(query):
            data: dict[str, Any] = orjson.loads(state)["d"]
            if topic == "MessageSent":
                conversation = data["message"]["conversation_id"]
                per_conversation[conversation] = per_conversation.get(conversation, 0) + 1
            elif topic == "MessageHandled":
                handled[data["agent"]] = handled.get(data["agent"], 0) + 1
            count += 1
        elapsed = time.perf_counter() - start
    connection.close()
    return count / elapsed


def run(quick: bool) -> list[Result]:
    return list(run_async(_run(quick)))


async def _run(quick: bool) -> list[Result]:
    runs = 2 if quick else 3
    n = 20_000 if quick else 100_000
    events = workload(n)
    ours = await repeat(runs, lambda d: append_caxton(d, events))
    bare = await repeat(runs, lambda d: _sync(append_bare, d, events))
    es = await repeat(runs, lambda d: _sync(append_eventsourcing, d, n // 5))
    rate, floor = median(ours), median(bare)
    out = [
        result(
            "log_append",
            unit="events/s",
            median=rate,
            higher_is_better=True,
            floor=(f"bare sqlite3, {BATCH} inserts per transaction", floor),
            peers={"eventsourcing": {"median": median(es)}},
            target={"share_of_floor": 0.5},
            met=rate >= 0.5 * floor,
            events=n,
            note=(
                f"{n:,} events of request conversations appended {BATCH} per append, "
                "each awaited (WAL, synchronous=NORMAL); eventsourcing: Application.save of "
                "one new aggregate per event"
            ),
        )
    ]

    async def both(directory: Path) -> tuple[float, float]:
        folded = await fold_caxton(directory, events)
        return folded, fold_bare(directory)

    pairs = await repeat(runs, both)
    rate, floor = median(p[0] for p in pairs), median(p[1] for p in pairs)
    out.append(
        result(
            "log_fold",
            unit="events/s",
            median=rate,
            higher_is_better=True,
            floor=("bare sqlite3 read + orjson decode + dict fold", floor),
            target={"share_of_floor": FOLD_SHARE_OF_FLOOR},  # issue 13: 100,000 events/s
            met=rate >= FOLD_SHARE_OF_FLOOR * floor,
            events=n,
            note="the whole log read page by page, decoded into events and folded into the world "
            "in place (LiveWorld); both sides with the cyclic collector paused, as at start-up",
        )
    )
    return out


async def _sync(function: Any, *args: Any) -> Any:
    return function(*args)
