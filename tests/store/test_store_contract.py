"""The contract every event-log backend passes: SQLite in a file, and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import threading

import orjson
import pytest

from caxton.domain.events import AgentStopped, MessageHandled, MessageSent, Recorded, stream_of
from caxton.shell.store import (
    AppendRejected,
    EventLog,
    LogCorrupted,
    Pending,
    StoreError,
    StoreUnavailable,
)
from caxton.shell.store import log as log_module
from caxton.shell.store.versions import RECENT_STREAMS
from tests.samples import every_event_type, message
from tests.store.conftest import RawDatabase, stop

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def stopped(agent: str, at: int = 0) -> Pending:
    return Pending(AgentStopped(agent=agent), at=at)


def handled(conversation: str, index: int) -> Pending:
    event = MessageHandled(
        message_id=f"m{index}", conversation_id=conversation, agent="a", replica=0
    )
    return Pending(event, at=1_000 + index)


async def test_every_event_type_comes_back_as_it_went_in(log: EventLog) -> None:
    pending = [
        Pending(e, at=1_700_000_000_000 + i, traceparent=TRACEPARENT)
        for i, e in enumerate(every_event_type())
    ]

    written = await log.append(pending)
    read = await log.read()

    assert read == written
    assert [r.event for r in read] == [p.event for p in pending]
    assert [r.at for r in read] == [p.at for p in pending]
    assert all(r.traceparent == TRACEPARENT for r in read)
    assert [r.stream for r in read] == [stream_of(p.event) for p in pending]
    assert [r.position for r in read] == list(range(1, len(pending) + 1))


async def test_appends_made_in_one_loop_iteration_commit_in_one_transaction(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = log._backend
    batches: list[int] = []
    insert = backend.insert

    def counting(batch):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        return insert(batch)

    monkeypatch.setattr(backend, "insert", counting)

    futures = [log.append([stopped(f"a{i % 7}", i)]) for i in range(100)]
    results = await asyncio.gather(*futures)

    assert batches == [100]
    assert [r[0].position for r in results] == list(range(1, 101))

    await log.append([stopped("later")])
    assert batches == [100, 1], "an append in a later iteration is a new transaction"


async def test_positions_have_no_gaps_and_each_stream_counts_from_one(log: EventLog) -> None:
    rng = random.Random(7)
    for _ in range(20):
        futures = [
            log.append([stopped(rng.choice("abcde")) for _ in range(rng.randint(1, 4))])
            for _ in range(rng.randint(1, 10))
        ]
        await asyncio.gather(*futures)

    read = await log.read()

    assert [r.position for r in read] == list(range(1, len(read) + 1))
    by_stream: dict[str, list[int]] = {}
    for r in read:
        by_stream.setdefault(r.stream, []).append(r.version)
    for stream, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), stream
    assert await log.last_position() == len(read)


async def test_futures_resolve_with_what_read_returns(log: EventLog) -> None:
    first = log.append([stopped("a", 1), stopped("b", 2)])
    second = log.append([stopped("a", 3)])

    written = await first + await second

    assert written == await log.read()
    assert [(r.stream, r.version) for r in written] == [
        ("agent:a", 1),
        ("agent:b", 1),
        ("agent:a", 2),
    ]


async def test_a_reopened_log_keeps_everything_and_continues_each_stream(store: str) -> None:
    log = await EventLog.open(store)
    await log.append([stopped("a"), stopped("b"), stopped("a")])
    queued = log.append([stopped("a")])  # close() must commit what is queued
    await log.close()
    assert (await queued)[0].version == 3

    reopened = await EventLog.open(store)
    try:
        before = await reopened.read()
        [more] = await reopened.append([stopped("a")])
        assert len(before) == 4
        assert (more.position, more.stream, more.version) == (5, "agent:a", 4)
        assert (await reopened.check_integrity()).events == 5
    finally:
        await reopened.close()


async def test_the_writer_keeps_recent_streams_only_and_continues_a_forgotten_one(
    store: str,
) -> None:
    log = await EventLog.open(store)
    try:
        await log.append([stopped("old"), stopped("old")])
        many = RECENT_STREAMS + 100
        await log.append([handled(f"c{i}", i) for i in range(many)])
        kept = len(log._writer._versions)
        [again] = await log.append([stopped("old")])  # forgotten: its version is looked up
        [first] = await log.append([handled("c0", 0)])

        assert kept <= RECENT_STREAMS, "the writer remembers every stream it has written"
        assert (again.stream, again.version, again.position) == ("agent:old", 3, many + 3)
        assert (first.version, first.position) == (2, many + 4)
        assert (await log.check_integrity()).events == many + 4
    finally:
        await log.close()


async def test_streams_missing_from_the_writer_are_looked_up_in_one_query_where_it_commits(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = log._backend
    calls: list[tuple[list[str], str]] = []

    def recording(streams):  # type: ignore[no-untyped-def]
        calls.append((sorted(streams), threading.current_thread().name))
        return backend.last_versions(streams)

    monkeypatch.setattr(log._writer._versions, "_lookup", recording)
    await log.append([stopped("a"), stopped("b"), stopped("a")])
    await log.append([stopped("a"), stopped("c")])  # a is kept; only c is asked for

    # on the loop thread if the backend commits there, else in the writer thread, where
    # each batch is numbered after the previous one committed
    where = threading.current_thread().name if backend.commits_inline else "caxton-log-writer"
    assert [streams for streams, _ in calls] == [["agent:a", "agent:b"], ["agent:c"]]
    assert all(thread.startswith(where) for _, thread in calls), calls


async def test_streams_said_to_be_new_are_numbered_from_one_without_a_lookup(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []
    lookup = log._writer._versions._lookup
    monkeypatch.setattr(
        log._writer._versions,
        "_lookup",
        lambda streams: asked.append(sorted(streams)) or lookup(streams),
    )

    first = log.append(
        [handled("fresh", 0), handled("fresh", 1)], new_streams=["conversation:fresh"]
    )
    other = log.append([stopped("a")])
    [one, two], [a] = await first, await other

    assert (one.version, two.version, a.version) == (1, 2, 1)
    assert asked == [["agent:a"]]  # only the stream nobody vouched for


async def test_a_stream_wrongly_said_to_be_new_fails_its_batch_and_overwrites_nothing(
    log: EventLog,
) -> None:
    [kept] = await log.append([handled("taken", 0)])

    with pytest.raises(StoreError):
        await log.append([handled("taken", 1)], new_streams=["conversation:taken"])
    [after] = await log.append([handled("taken", 2)])

    assert [r.version for r in await log.read(conversation_id="taken")] == [1, 2]
    assert (kept.version, after.version) == (1, 2)


async def test_the_database_refuses_update_and_delete(log: EventLog, raw: RawDatabase) -> None:
    await log.append([stopped("a"), stopped("b")])

    for statement in (
        f"UPDATE {raw.table} SET topic = 'AgentRemoved'",
        f"DELETE FROM {raw.table} WHERE originator_id = 'agent:a'",
        f"DELETE FROM {raw.table}",
    ):
        with pytest.raises(Exception, match="append-only"):
            raw.execute(statement)
    if raw.kind == "postgresql":
        with pytest.raises(Exception, match="append-only"):
            raw.execute(f"TRUNCATE {raw.table}")

    assert [r.event for r in await log.read()] == [AgentStopped(agent="a"), AgentStopped(agent="b")]
    assert (await log.check_integrity()).events == 2


async def test_reopening_does_not_duplicate_the_triggers(store: str, raw: RawDatabase) -> None:
    for _ in range(2):
        await (await EventLog.open(store)).close()
    if raw.kind == "sqlite":
        found = raw.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    else:
        found = raw.execute(
            f"SELECT tgname FROM pg_trigger WHERE tgrelid = '{raw.table}'::regclass"
            " AND NOT tgisinternal"
        )
    assert sorted(name for (name,) in found) == sorted(
        ["caxton_no_update", "caxton_no_delete"]
        if raw.kind == "sqlite"
        else ["caxton_no_update_delete", "caxton_no_truncate"]
    )


async def test_follow_yields_what_exists_then_each_new_commit(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "POLL_INTERVAL_S", 3600.0)  # only a commit can wake it
    await log.append([stopped("a", 1)])
    following = log.follow()

    first = await asyncio.wait_for(anext(following), 5)
    waiting = asyncio.ensure_future(anext(following))
    await asyncio.sleep(0)  # let the follower reach its wait (a yield, not a delay)
    assert not waiting.done()
    [appended] = await log.append([stopped("b", 2)])
    second = await asyncio.wait_for(waiting, 5)

    assert first.event == AgentStopped(agent="a")
    assert second == appended
    await stop(following)


async def test_follow_of_a_conversation_skips_other_streams(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "POLL_INTERVAL_S", 3600.0)
    await log.append([handled("c1", 0), stopped("x"), handled("c2", 1)])
    following = log.follow(conversation_id="c1")
    assert (await asyncio.wait_for(anext(following), 5)).event.message_id == "m0"  # type: ignore[union-attr]

    waiting = asyncio.ensure_future(anext(following))
    await log.append([handled("c2", 2), stopped("y")])
    await log.append([handled("c1", 3)])
    found = await asyncio.wait_for(waiting, 5)

    assert (found.stream, found.version, found.position) == ("conversation:c1", 2, 6)
    await stop(following)


async def test_follow_ends_when_the_log_closes(store: str) -> None:
    log = await EventLog.open(store)
    await log.append([stopped("a")])
    seen: list[Recorded] = []
    first_seen = asyncio.Event()

    async def consume() -> None:
        async for r in log.follow():
            seen.append(r)
            first_seen.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(first_seen.wait(), 5)
    await log.close()

    await asyncio.wait_for(task, 5)
    assert len(seen) == 1


async def test_read_filters_by_conversation_position_time_and_count(log: EventLog) -> None:
    sent = MessageSent(message=message("c1", 9), deliveries=("echo#0",))
    await log.append(
        [handled("c1", 0), handled("c2", 1), stopped("a", 5_000), Pending(sent, at=1_002)]
    )
    await log.append([handled("c1", 3), handled("c2", 4)])

    c1 = await log.read(conversation_id="c1")
    assert [(r.position, r.version) for r in c1] == [(1, 1), (4, 2), (5, 3)]
    assert all(r.stream == "conversation:c1" for r in c1)
    assert [r.position for r in await log.read(conversation_id="c1", from_position=2)] == [4, 5]
    assert [r.position for r in await log.read(since_ms=1_003)] == [3, 5, 6]
    assert [r.position for r in await log.read(from_position=2, limit=2)] == [2, 3]
    assert [r.position for r in await log.read(conversation_id="c1", since_ms=1_002, limit=1)] == [
        4
    ]
    assert await log.read(conversation_id="nobody") == []
    assert await log.read(from_position=99) == []


async def test_reads_page_through_more_than_a_page(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "PAGE", 3)
    await log.append([handled("c1", i) if i % 2 else stopped("a", i) for i in range(10)])

    assert [r.position for r in await log.read()] == list(range(1, 11))
    assert [r.position for r in await log.read(conversation_id="c1")] == [2, 4, 6, 8, 10]
    assert (await log.check_integrity()).events == 10


async def test_the_integrity_check_passes_on_a_sound_log(log: EventLog) -> None:
    await log.append([Pending(e, at=1) for e in every_event_type()])
    await log.append([stopped("a")])

    report = await log.check_integrity()

    count = len(every_event_type()) + 1
    assert (report.events, report.last_position) == (count, count)
    assert report.streams == len({stream_of(e) for e in every_event_type()} | {"agent:a"})


async def test_the_integrity_check_finds_a_payload_that_does_not_decode(
    log: EventLog, raw: RawDatabase
) -> None:
    await log.append([stopped("a"), stopped("b")])
    raw.insert("agent:a", 2, "AgentStopped", b'{"v": 1, "at": 0, "d": {"agnt": 3}}')

    with pytest.raises(
        LogCorrupted, match=r"position 3 \(stream 'agent:a'\).*does not decode"
    ) as e:
        await log.check_integrity()
    assert (e.value.position, e.value.stream) == (3, "agent:a")
    with pytest.raises(LogCorrupted):
        await log.read()


async def test_the_integrity_check_finds_a_gap_and_a_skipped_version(
    log: EventLog, raw: RawDatabase
) -> None:
    await log.append([stopped("a")])
    good = orjson.dumps({"v": 1, "at": 0, "tp": "", "d": {"agent": "a"}})
    raw.insert("agent:a", 3, "AgentStopped", good)

    with pytest.raises(LogCorrupted, match="expected version 2 of the stream, found 3"):
        await log.check_integrity()

    raw.insert("agent:b", 1, "AgentStopped", good.replace(b'"a"', b'"b"'), position=5)
    with pytest.raises(LogCorrupted, match="expected version 2"):
        await log.check_integrity()


async def test_the_integrity_check_finds_a_gap_in_positions(
    log: EventLog, raw: RawDatabase
) -> None:
    await log.append([stopped("a")])
    good = orjson.dumps({"v": 1, "at": 0, "tp": "", "d": {"agent": "b"}})
    raw.insert("agent:b", 1, "AgentStopped", good, position=3)

    with pytest.raises(LogCorrupted, match="expected position 2 next, found 3"):
        await log.check_integrity()


async def test_the_integrity_check_finds_an_event_in_the_wrong_stream(
    log: EventLog, raw: RawDatabase
) -> None:
    good = orjson.dumps({"v": 1, "at": 0, "tp": "", "d": {"agent": "b"}})
    raw.insert("agent:a", 1, "AgentStopped", good)

    with pytest.raises(LogCorrupted, match="stream 'agent:b' is stored in another stream"):
        await log.check_integrity()


async def test_a_second_writer_is_refused_and_the_first_carries_on_without_gaps(store: str) -> None:
    first = await EventLog.open(store)
    second = await EventLog.open(store)  # breaks the single-writer rule on purpose
    try:
        await second.append([stopped("a")])  # the second now knows a's last version: 1
        await first.append([stopped("a")])  # the first looks it up: 2
        with pytest.raises(AppendRejected):
            await second.append([stopped("a"), stopped("b")])
        [retried] = await second.append([stopped("a")])  # versions were asked again
        [after] = await first.append([stopped("c")])

        assert (retried.version, retried.position) == (3, 3)
        assert after.position == 4
        assert (await first.check_integrity()).events == 4
    finally:
        await second.close()
        await first.close()


async def test_an_append_to_a_closed_log_is_refused(store: str) -> None:
    log = await EventLog.open(store)
    await log.close()

    with pytest.raises(StoreUnavailable, match="closed"):
        await log.append([stopped("a")])


async def test_position_at_finds_the_first_event_at_or_after_a_time(log: EventLog) -> None:
    await log.append([stopped(f"a{i}", at=1_000 + 10 * i) for i in range(50)])

    assert await log.position_at(0) == 1
    assert await log.position_at(1_000) == 1
    assert await log.position_at(1_001) == 2
    assert await log.position_at(1_250) == 26
    assert await log.position_at(1_490) == 50
    assert await log.position_at(1_491) == 51  # past the last: nothing that recent


@pytest.mark.parametrize("page", [2, 4_096])
async def test_active_streams_are_the_most_recently_active_with_the_prefix(
    log: EventLog, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    monkeypatch.setattr(log_module, "PAGE", page)  # the walk back, a page at a time
    for i in range(6):
        await log.append([handled(f"c{i}", i), stopped(f"agent{i}")])
    await log.append([handled("c1", 99)])  # c1 is the most recent again

    streams = await log.active_streams("conversation:", from_position=5, limit=10)
    assert streams == [
        "conversation:c1",
        "conversation:c5",
        "conversation:c4",
        "conversation:c3",
        "conversation:c2",
    ]
    assert await log.active_streams("conversation:", from_position=1, limit=2) == [
        "conversation:c1",
        "conversation:c5",
    ]
    assert await log.active_streams("agent:", from_position=100, limit=10) == []
