"""The lease keeper when the shared log stops answering: the node is told at once that
it cannot reach the log (it takes no new work), then, two thirds of a lease on, that
what it holds is lost; an answer again clears the first. The lease table is a fake
whose answers can be withheld, as a cut network withholds them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import cast

from caxton.domain.events import Recorded
from caxton.shell.cluster.leases import LeaseKeeper
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.store import EventLog, Lease, Pending

LEASE_S = 6.0  # a sixth of it per statement: unreachable at most 3 s into a cut, lost at 4


class Table:
    """Shard 3 held by this node at epoch 1, every other shard by a live peer."""

    def __init__(self) -> None:
        self.answering = asyncio.Event()
        self.answering.set()
        self.answers = 0

    async def renew(self, node: str, held: Mapping[int, int], ttl_s: float) -> set[int]:
        await self.answering.wait()
        self.answers += 1
        return set(held)

    async def leases(self) -> dict[int, Lease]:
        await self.answering.wait()
        self.answers += 1
        return {
            s: Lease(shard=s, owner="me" if s == 3 else "peer", epoch=1, expires_in_s=60)
            for s in range(64)
        }


class Holder:
    def __init__(self, *, stop_s: float = 0.0) -> None:
        self.lost: list[tuple[frozenset[int], str]] = []
        self.stop_s = stop_s
        self.stopped: list[int] = []

    def shard_claimed(self, shard: int, position: int) -> None:
        raise AssertionError("nothing is free to claim")

    async def shard_releasing(self, shard: int) -> None:
        await asyncio.sleep(self.stop_s)  # an agent finishing a long handling
        self.stopped.append(shard)

    def shards_lost(self, shards: Collection[int], why: str) -> None:
        self.lost.append((frozenset(shards), why))


async def until(condition: Callable[[], bool], *, within_s: float = 30) -> None:
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_node_cut_from_the_log_refuses_work_then_gives_its_shards_up() -> None:
    table, holder = Table(), Holder()
    keeper = LeaseKeeper(
        cast(EventLog, table), "me", SystemClock(), live=lambda: 2, lease_s=LEASE_S
    )
    keeper.held[3] = 1
    keeper.start(holder)
    try:
        await until(lambda: table.answers >= 2)  # a renewal and a look at the table
        table.answering.clear()  # a short cut: statements hang, unanswered
        await until(lambda: keeper.unreachable != "")
        assert keeper.unreachable.startswith("no answer since ")
        table.answering.set()  # healed in time: it answers again, nothing lost
        await until(lambda: keeper.unreachable == "")
        assert holder.lost == [] and 3 in keeper.held and not keeper.deposed

        table.answering.clear()  # a long cut
        await until(lambda: holder.lost != [])
        ((shards, why),) = holder.lost
        assert shards == {3} and not keeper.held and keeper.deposed
        assert "the shared log did not answer for" in why
        table.answering.set()  # healed too late: the keeper stays down (the node restarts)
        answered = table.answers
        await asyncio.sleep(LEASE_S / 2)  # a tick and a half: nothing renewed or read
        assert table.answers == answered and keeper.unreachable != ""
    finally:
        await keeper.halt()


class Crowded(Table):
    """Every shard held by this node: with two live nodes, it gives half of them up."""

    def __init__(self) -> None:
        super().__init__()
        self.released: list[int] = []

    async def leases(self) -> dict[int, Lease]:
        await self.answering.wait()
        self.answers += 1
        return {s: Lease(shard=s, owner="me", epoch=1, expires_in_s=60) for s in range(64)}

    async def release(
        self, node: str, held: Mapping[int, int], items: Sequence[Pending] = ()
    ) -> list[Recorded]:
        await self.answering.wait()
        self.released.extend(held)
        return []


async def test_agents_slow_to_stop_in_a_rebalance_are_waited_for_not_taken_for_a_cut() -> None:
    table, holder = Crowded(), Holder(stop_s=LEASE_S)  # longer than two thirds of a lease
    keeper = LeaseKeeper(
        cast(EventLog, table), "me", SystemClock(), live=lambda: 2, lease_s=LEASE_S
    )
    keeper.held.update(dict.fromkeys(range(64), 1))
    keeper.start(holder)
    try:
        await until(lambda: len(table.released) >= 32)
    finally:
        await keeper.halt()
    assert holder.lost == [] and keeper.unreachable == "" and not keeper.deposed
    assert sorted(holder.stopped) == sorted(table.released)  # stopped, then released
    assert len(keeper.held) == 32 and not keeper.held.keys() & set(table.released)
