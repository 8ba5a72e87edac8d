"""A cluster's shared log in PostgreSQL: two nodes on one table, fenced leases, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from caxton.domain.events import AgentStopped, Recorded, ShardClaimed
from caxton.domain.placement import SHARDS
from caxton.shell.store import (
    ClaimRefused,
    EventLog,
    LeaseLost,
    Pending,
    StoreUnavailable,
)
from caxton.shell.store import log as log_module
from tests.store.conftest import POSTGRES_URL, postgres_schema, stop

pytestmark = pytest.mark.postgres


def stopped(agent: str, at: int = 0) -> Pending:
    return Pending(AgentStopped(agent=agent), at=at)


def claimed(shard: int, node: str, epoch: int) -> list[Pending]:
    return [Pending(ShardClaimed(shard=shard, node=node, epoch=epoch), at=0)]


@pytest.fixture
def shared_store() -> Iterator[str]:
    """A fresh schema of the test database, dropped afterwards."""
    with postgres_schema("caxton_test") as url:
        yield url


@pytest.fixture
async def nodes(shared_store: str) -> AsyncIterator[tuple[EventLog, EventLog]]:
    """Two nodes' logs on one shared schema, opened at the same moment (as a cluster
    starting: both create the tables)."""
    a, b = await asyncio.gather(
        EventLog.open(shared_store, shared=True), EventLog.open(shared_store, shared=True)
    )
    yield a, b
    await asyncio.gather(a.close(), b.close())


async def collect(log: EventLog, count: int) -> list[Recorded]:
    seen: list[Recorded] = []
    following = log.follow()
    async for record in following:
        seen.append(record)
        if len(seen) == count:
            break
    await stop(following)
    return seen


async def test_two_nodes_writing_the_same_streams_at_once_number_them_without_gaps(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, b = nodes
    rounds, per_round, streams = 40, 5, 4
    total = 2 * rounds * per_round
    followers = [asyncio.ensure_future(collect(log, total)) for log in (a, b)]

    async def write(log: EventLog) -> list[Recorded]:
        written: list[Recorded] = []
        for r in range(rounds):
            futures = [
                log.append([stopped(f"s{(r + i) % streams}", at=r)]) for i in range(per_round)
            ]
            for done in await asyncio.gather(*futures):
                written.extend(done)
        return written

    by_a, by_b = await asyncio.gather(write(a), write(b))
    seen_by_a, seen_by_b = await asyncio.wait_for(asyncio.gather(*followers), 60)
    stored = await a.read()

    assert [r.position for r in stored] == list(range(1, total + 1))
    versions: dict[str, list[int]] = defaultdict(list)
    for record in stored:
        versions[record.stream].append(record.version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values()), versions
    assert sorted(by_a + by_b, key=lambda r: r.position) == stored, "as returned, as stored"
    assert seen_by_a == stored
    assert seen_by_b == stored


async def test_the_integrity_check_passes_while_another_node_appends(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, b = nodes
    await b.append([stopped(f"s{i % 3}") for i in range(50)])
    writing = True

    async def keep_appending() -> int:
        appended = 0
        while writing:
            appended += len(await b.append([stopped(f"s{appended % 3}")]))
        return appended

    appending = asyncio.ensure_future(keep_appending())
    try:
        reports = [await a.check_integrity() for _ in range(30)]
    finally:
        writing = False
    appended = await appending

    assert appended > 0
    assert reports[0].events >= 50
    assert [r.last_position for r in reports] == sorted(r.last_position for r in reports)


async def test_a_deposed_owner_is_refused_while_its_unfenced_appends_and_the_new_owner_commit(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, b = nodes
    await a.claim(1, "A", 0, 2.0, claimed(1, "A", 1))
    await a.claim(4, "A", 0, 60.0, claimed(4, "A", 1))
    before = await a.last_position()
    with pytest.raises(ClaimRefused, match="A holds it") as refused:
        await b.claim(1, "B", 1, 60.0, claimed(1, "B", 2))
    assert refused.value.shard == 1
    assert await a.last_position() == before, "a refused claim writes nothing"

    while (await b.leases())[1].expires_in_s >= 0:  # A pauses past its lease
        await asyncio.sleep(0.05)
    [claim] = await b.claim(1, "B", 1, 60.0, claimed(1, "B", 2))
    deposed = a.append([stopped("fenced-by-a")], fence={1: 1})
    unfenced = a.append([stopped("unfenced-by-a")])
    other_shard = a.append([stopped("fenced-on-4-by-a")], fence={4: 1})
    outcomes = await asyncio.gather(deposed, unfenced, other_shard, return_exceptions=True)
    [by_b] = await b.append([stopped("fenced-by-b")], fence={1: 2})

    lost = outcomes[0]
    assert isinstance(lost, LeaseLost), outcomes
    assert lost.shards == {1}
    assert "shard 1 from epoch 1 to 2" in str(lost)
    assert a.fault is None, "a lost lease is not a broken log"
    assert [type(o) for o in outcomes[1:]] == [list, list]
    log = [(r.stream, r.event) for r in await b.read(from_position=claim.position)]
    assert log == [
        ("shard:1", ShardClaimed(shard=1, node="B", epoch=2)),
        ("agent:unfenced-by-a", AgentStopped(agent="unfenced-by-a")),
        ("agent:fenced-on-4-by-a", AgentStopped(agent="fenced-on-4-by-a")),
        ("agent:fenced-by-b", AgentStopped(agent="fenced-by-b")),
    ]
    assert by_b.position == claim.position + 3, "positions stay gap-free past the refusal"
    leases = await a.leases()
    assert (leases[1].owner, leases[1].epoch) == ("B", 2)
    assert leases[1].expires_in_s > 0


async def test_refused_appends_and_claims_leave_the_next_ones_working(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, b = nodes
    await b.claim(9, "B", 0, 60.0, claimed(9, "B", 1))
    for i in range(20):  # refusals in a row, on one connection: none spoils the next append
        await a.append([stopped(f"ok{i}")])
        with pytest.raises(LeaseLost):
            await a.append([stopped(f"refused{i}")], fence={9: 0})
        with pytest.raises(ClaimRefused):
            await a.claim(9, "A", 1, 60.0, claimed(9, "A", 2))

    [last] = await a.append([stopped("last")])

    assert last.position == 22
    assert a.fault is None


async def test_renew_extends_what_is_held_and_leaves_out_what_was_lost(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, b = nodes
    await a.claim(2, "A", 0, 60.0, claimed(2, "A", 1))
    await a.claim(3, "A", 0, 60.0, claimed(3, "A", 1))
    assert await a.renew("A", {2: 1, 3: 1}, 60.0) == {2, 3}

    await a.release("A", {3: 1})
    assert (await b.leases())[3].expires_in_s == -math.inf
    await b.claim(3, "B", 1, 60.0, claimed(3, "B", 2))  # at once: released, not expired

    assert await a.renew("A", {2: 1, 3: 1}, 60.0) == {2}
    assert await b.renew("B", {3: 2}, 60.0) == {3}
    assert await b.renew("B", {2: 1}, 60.0) == set(), "B does not hold shard 2"
    await b.release("B", {3: 2})
    await a.claim(3, "A", 2, 60.0, claimed(3, "A", 3))
    assert await a.renew("A", {3: 1}, 60.0) == set(), "held again, but not at epoch 1"
    assert await a.renew("A", {3: 3}, 60.0) == {3}
    await a.release("A", {2: 1})
    assert await a.renew("A", {2: 1}, 60.0) == set(), "a released lease stays released"


async def test_the_lease_table_has_a_row_per_shard_unowned_until_claimed(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, _ = nodes
    leases = await a.leases()

    assert sorted(leases) == list(range(SHARDS))
    assert all(lease.owner == "" and lease.epoch == 0 for lease in leases.values())
    assert all(lease.expires_in_s == -math.inf for lease in leases.values())


async def test_a_claim_at_a_stale_epoch_is_refused(nodes: tuple[EventLog, EventLog]) -> None:
    a, b = nodes
    await a.claim(5, "A", 0, 60.0, claimed(5, "A", 1))
    await a.release("A", {5: 1})

    with pytest.raises(ClaimRefused, match="its epoch is 1, not 0"):
        await b.claim(5, "B", 0, 60.0, claimed(5, "B", 1))


async def test_appends_of_one_iteration_commit_in_order_a_transaction_per_run_of_one_fence(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, _ = nodes
    await a.claim(6, "A", 0, 60.0, claimed(6, "A", 1))
    batches = a._writer.batches

    futures = [
        a.append([stopped("u1")]),
        a.append([stopped("u2")]),
        a.append([stopped("f1")], fence={6: 1}),
        a.append([stopped("f2")], fence={6: 1}),
        a.append([stopped("u3")]),
    ]
    written = [r for done in await asyncio.gather(*futures) for r in done]

    assert [r.stream for r in written] == [f"agent:{n}" for n in ("u1", "u2", "f1", "f2", "u3")]
    assert [r.position for r in written] == list(range(2, 7))
    assert a._writer.batches - batches == 3


async def test_another_nodes_commit_wakes_a_follower_without_polling(
    nodes: tuple[EventLog, EventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "SHARED_POLL_INTERVAL_S", 3600.0)  # only a wake can
    a, b = nodes
    await a.append([stopped("first")])
    following = b.follow()
    first = await asyncio.wait_for(anext(following), 10)
    waiting = asyncio.ensure_future(anext(following))
    woken = b.next_commit()
    waited = asyncio.ensure_future(b.wait_for_commit())

    [appended] = await a.append([stopped("second")])

    assert await asyncio.wait_for(waiting, 10) == appended
    await asyncio.wait_for(waited, 10)
    assert woken.is_set()
    assert first.event == AgentStopped(agent="first")
    await stop(following)


async def test_a_follower_is_woken_again_after_its_listening_connection_is_cut(
    nodes: tuple[EventLog, EventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "SHARED_POLL_INTERVAL_S", 3600.0)
    a, b = nodes
    listener = b._backend._listener  # type: ignore[attr-defined]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (listener.info.backend_pid,))
    following = b.follow()

    [appended] = await a.append([stopped("after the cut")])

    assert await asyncio.wait_for(anext(following), 30) == appended
    [later] = await a.append([stopped("later")])
    assert await asyncio.wait_for(anext(following), 30) == later
    await stop(following)


async def test_a_lost_writer_connection_fails_its_append_once_and_nothing_is_written_twice(
    nodes: tuple[EventLog, EventLog], shared_store: str
) -> None:
    a, _ = nodes
    await a.append([stopped("before")])
    schema = shared_store.rsplit("=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE %s",
            (f'%"{schema}".caxton_append%',),
        )

    with pytest.raises(StoreUnavailable):  # not retried: a lost COMMIT may have written it
        await a.append([stopped("cut")])
    [after] = await a.append([stopped("after")])

    assert [r.event for r in await a.read()] == [
        AgentStopped(agent="before"),
        AgentStopped(agent="after"),
    ]
    assert after.position == 2
    assert a.fault is None


async def test_lease_calls_survive_a_lost_connection(nodes: tuple[EventLog, EventLog]) -> None:
    a, _ = nodes
    await a.claim(7, "A", 0, 60.0, claimed(7, "A", 1))
    connection = a._backend._leases  # type: ignore[attr-defined]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))

    assert await a.renew("A", {7: 1}, 60.0) == {7}


async def test_a_component_put_by_one_node_is_fetched_by_another(
    nodes: tuple[EventLog, EventLog],
) -> None:
    a, b = nodes
    assert await b.get_component("sha256:abc") is None

    await a.put_component("sha256:abc", b"\0asm one")
    await b.put_component("sha256:abc", b"\0asm one")  # deployed again: kept once

    assert await b.get_component("sha256:abc") == b"\0asm one"


async def test_nodes_starting_together_all_open_the_new_log(shared_store: str) -> None:
    opened = await asyncio.gather(
        *(EventLog.open(shared_store, shared=True) for _ in range(4)), return_exceptions=True
    )
    for log in opened:
        if isinstance(log, EventLog):
            await log.close()

    assert [type(log) for log in opened] == [EventLog] * 4, opened


async def test_a_shared_log_cannot_be_opened_exclusively(shared_store: str) -> None:
    with pytest.raises(ValueError, match="cannot be opened exclusively"):
        await EventLog.open(shared_store, shared=True, exclusive=True)


async def test_a_shared_log_in_sqlite_is_refused_and_says_why(tmp_path: Path) -> None:
    where = tmp_path / "caxton.db"

    with pytest.raises(StoreUnavailable, match="must be in PostgreSQL") as e:
        await EventLog.open(str(where), shared=True)
    assert str(where) in str(e.value)
    assert not where.exists()


async def test_fences_and_claims_need_a_shared_log(tmp_path: Path) -> None:
    log = await EventLog.open(str(tmp_path / "caxton.db"))
    try:
        assert not log.shared
        with pytest.raises(ValueError, match="needs a shared log"):
            log.append([stopped("a")], fence={1: 1})
        with pytest.raises(ValueError, match="needs a shared log"):
            await log.claim(1, "A", 0, 10.0, claimed(1, "A", 1))
        with pytest.raises(ValueError, match="needs a shared log"):
            await log.leases()
        assert await log.read() == []
    finally:
        await log.close()


async def test_every_event_names_the_node_that_committed_it(
    shared_store: str, tmp_path: Path
) -> None:
    a, b = await asyncio.gather(
        EventLog.open(shared_store, shared=True, origin="n1"),
        EventLog.open(shared_store, shared=True, origin="n2"),
    )
    try:
        (first,) = await a.append([stopped("x")])
        (claim,) = await b.claim(5, "n2", 0, 10, claimed(5, "n2", 1))
        read = await a.read()
    finally:
        await asyncio.gather(a.close(), b.close())
    assert (first.node, claim.node) == ("n1", "n2")  # as committed, and as read back
    assert [r.node for r in read] == ["n1", "n2"]
    # a log outside a cluster stores no node: its bytes are those of earlier builds
    alone = await EventLog.open(str(tmp_path / "events.db"))
    try:
        (solo,) = await alone.append([stopped("x")])
    finally:
        await alone.close()
    assert solo.node == ""
    with sqlite3.connect(tmp_path / "events.db") as db:
        (state,) = db.execute("SELECT state FROM stored_events").fetchone()
    assert b'"n"' not in state and b'"tp"' in state
