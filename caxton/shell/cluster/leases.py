"""This node's shard leases: claimed, renewed, given up, and lost (ADR 0018).

The lease table in the shared log decides who holds a shard; this keeper only asks it.
Each tick renews what the node holds (a shard the table no longer gives back was taken
by another node: lost), then plans with `caxton.domain.placement.plan` which free shards
to claim and which to give up, and does so: a claim and its `ShardClaimed` event commit
in one transaction, or neither does. While the log does not answer, the node takes no new
work (`unreachable`); a node the log has not answered for two thirds of a lease treats
everything it holds as lost before the table does (it stops acting on a world it can no
longer write to), and fenced appends refuse it anyway if it is slower than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from caxton.domain.events import Recorded, ShardClaimed, ShardReleased
from caxton.domain.placement import LeaseView, plan, shard_of
from caxton.shell.runtime.clock import Clock
from caxton.shell.store import ClaimRefused, EventLog, LeaseLost, Pending, StoreError

logger = logging.getLogger("caxton.cluster")

LEASE_S = 10.0
"""How long a lease lasts unless renewed: longer than PostgreSQL's idle-in-transaction
timeout (5 s), which bounds how long a frozen writer can hold the table lock."""


CONTENDED_PAUSE_S = 0.05
"""After a refused claim, how long before planning again (other free shards may be left
that this node would have claimed had it not wanted the contended ones first)."""


class ShardHolder(Protocol):
    """What a node does as its shards change (`caxton.shell.runtime.node.Node`)."""

    def shard_claimed(self, shard: int, position: int) -> None:
        """Start the shard's agents and deliver what waits for them (in the background:
        renewals must not wait), once the world folded the claim at `position`."""
        ...

    async def shard_releasing(self, shard: int) -> None:
        """Stop the shard's agents (it is about to be given up)."""
        ...

    def shards_lost(self, shards: Collection[int], why: str) -> None:
        """Shards were taken, or could not be renewed in time (`why`, in plain words):
        stop acting on them."""
        ...


class LeaseKeeper:
    """Holds the node's leases (`held`: shard → epoch) and tells the node what changed
    (`start(holder)`). As an `Ownership`, it tells the node which agents it runs."""

    def owns(self, agent: str) -> bool:
        shard = shard_of(agent)
        return shard in self.held and shard not in self._releasing

    @property
    def fence(self) -> Mapping[int, int]:
        return self.held

    @property
    def unreachable(self) -> str:
        if self._unreachable_since is None:
            return ""
        since = time.strftime("%H:%M:%S UTC", time.gmtime(self._unreachable_since))
        return f"no answer since {since}: {self._last_error}"

    def __init__(
        self,
        log: EventLog,
        node: str,
        clock: Clock,
        *,
        live: Callable[[], int],
        lease_s: float = LEASE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.node = node
        self.clock = clock
        self.lease_s = lease_s
        self.held: dict[int, int] = {}
        self._live = live
        self._holder: ShardHolder | None = None
        self._monotonic = monotonic
        self._answered_at = monotonic()  # the last time the log answered a lease statement
        self._unreachable_since: float | None = None  # wall-clock time of the first failure
        self._last_error = ""
        self._free_since: dict[int, float] = {}
        self._poke = asyncio.Event()
        self._contended = False  # a claim of the last tick was refused
        self._releasing: set[int] = set()  # shards being given up: their agents stopping
        self._giving_up: set[asyncio.Task[None]] = set()
        self.deposed = False
        """Set once a lease was lost or lapsed: the keeper claims and renews no more."""
        # shards claimed beyond the share (left to nobody), kept while `live` stays the same
        self._rescued: set[int] = set()
        self._rescued_live = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, holder: ShardHolder) -> None:
        """Starts ticking (the first tick at once), telling `holder` what changes."""
        self._holder = holder
        self._answered_at = self._monotonic()  # the silence counts from now, not the fold
        self._task = asyncio.get_running_loop().create_task(self._run(), name="leases")

    def poke(self) -> None:
        """Look again now (a peer was declared dead: its leases may be free soon)."""
        self._poke.set()

    async def halt(self) -> None:
        """Stops ticking: nothing more is claimed, renewed or given up (the node stops)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._giving_up:  # not cancelled half-way: agents stopping, a release bounded
            await asyncio.wait(self._giving_up)

    async def release_held(self) -> None:
        """Gives every held shard up (once the node stopped its agents), recording each
        `ShardReleased` in the same transaction: another node may claim them at once,
        instead of after a lease."""
        if self.held:
            held, self.held = dict(self.held), {}
            with contextlib.suppress(StoreError):
                try:
                    await self.log.release(self.node, held, self._released(held))
                except LeaseLost:  # one was taken (it was paused): free the others at least
                    await self.log.release(self.node, held)

    async def hand_over(self) -> None:
        await self.release_held()

    def follow(self, recorded: Recorded) -> None:
        """An event another node committed: its shards given up are free now, so look
        at the table at once rather than at the next tick."""
        if isinstance(recorded.event, ShardReleased):
            self.poke()

    def _released(self, held: Mapping[int, int]) -> list[Pending]:
        at = self.clock.now_ms()
        return [
            Pending(event=ShardReleased(shard=shard, node=self.node, epoch=epoch), at=at)
            for shard, epoch in sorted(held.items())
        ]

    async def stop(self) -> None:
        await self.halt()
        await self.release_held()

    async def tick(self) -> None:
        """Renew, then claim and give up as planned; nothing more once a lease was lost
        (the node stops working: it must not claim what it could not run)."""
        if self.deposed:
            return
        await self._renew()
        if self.deposed:
            return
        try:
            async with asyncio.timeout(self._patience_s):  # as a renewal: a cut must not hang
                table = await self.log.leases()
        except (StoreError, TimeoutError) as e:
            self._unanswered(e)
            return
        self._answered()
        leases = {
            shard: LeaseView(
                shard=shard, owner=lease.owner, epoch=lease.epoch, expires_in_s=lease.expires_in_s
            )
            for shard, lease in table.items()
        }
        now = self._monotonic()
        for shard, lease in leases.items():
            if lease.free and shard not in self.held:
                self._free_since.setdefault(shard, now)
            else:
                self._free_since.pop(shard, None)
        live = self._live()
        if live != self._rescued_live:  # a node came or went: the share is another
            self._rescued, self._rescued_live = set(), live
        decided = plan(
            self.node,
            leases,
            self.held,
            live=live,
            orphaned_for={s: now - t for s, t in self._free_since.items()},
            patience_s=self.lease_s,
            rescued=self._rescued & self.held.keys(),
        )
        for shard in decided.release:
            if shard not in self._releasing:
                self._releasing.add(shard)  # from now on its agents start nowhere here
                task = asyncio.get_running_loop().create_task(self._give_up(shard))
                self._giving_up.add(task)
                task.add_done_callback(self._giving_up.discard)
        for shard in decided.claim:
            await self._claim(leases[shard])
        self._rescued.update(s for s in decided.rescued if s in self.held)

    async def _give_up(self, shard: int) -> None:
        """Stops the shard's agents (as long as that takes: the lease is renewed
        meanwhile, by the ticks that go on), lets what they handled commit under the
        shard's fence, then records the release and frees the lease together."""
        try:
            await self._told().shard_releasing(shard)
            epoch = self.held.pop(shard, None)
            if epoch is None or self.deposed:
                return  # lost meanwhile
            given = {shard: epoch}
            try:
                async with asyncio.timeout(self._patience_s):
                    await self.log.release(self.node, given, self._released(given))
            except (StoreError, TimeoutError) as e:  # not renewed any more: it lapses
                logger.warning("shard %d not released (%s): its lease lapses", shard, e)
                return
            logger.info("gave up shard %d (epoch %d)", shard, epoch)
        finally:
            self._releasing.discard(shard)

    async def _renew(self) -> None:
        if not self.held:
            return
        try:
            async with asyncio.timeout(self._patience_s):  # a dead link must not hang a tick
                renewed = await self.log.renew(self.node, self.held, self.lease_s)
        except (StoreError, TimeoutError) as e:
            self._unanswered(e)
            return
        self._answered()
        lost = frozenset(self.held.keys() - renewed)
        if lost:
            self._lose(lost, f"shards {sorted(lost)} were taken by another node")

    def _lose(self, shards: frozenset[int], why: str) -> None:
        for shard in shards:
            del self.held[shard]
        self.deposed = True
        logger.warning("%s", why)
        self._told().shards_lost(shards, why)

    async def _claim(self, lease: LeaseView) -> None:
        epoch = lease.epoch + 1
        claimed = ShardClaimed(
            shard=lease.shard,
            node=self.node,
            epoch=epoch,
            previous=lease.owner,
            reason=lease.why_free,
        )
        try:
            async with asyncio.timeout(self._patience_s):
                recorded = await self.log.claim(
                    lease.shard,
                    self.node,
                    lease.epoch,
                    self.lease_s,
                    [Pending(event=claimed, at=self.clock.now_ms())],
                )
        except TimeoutError as e:  # if it commits late, the lease lapses unrenewed
            self._unanswered(e)
            return
        except ClaimRefused:
            self._contended = True  # another node was quicker: the table granted it to them
            return
        self.held[lease.shard] = epoch
        self._free_since.pop(lease.shard, None)
        logger.info("claimed shard %d at epoch %d (%s)", lease.shard, epoch, lease.why_free)
        self._told().shard_claimed(lease.shard, recorded[-1].position)

    @property
    def _patience_s(self) -> float:
        """How long a lease statement may take: with a tick every third of a lease, the
        first unanswered one is seen by half a lease of silence, before the lease is
        given up at two thirds (the node refuses new work in between). At least a
        second, as far as a third of a lease allows: a busy machine is not a cut."""
        return max(self.lease_s / 6, min(1.0, self.lease_s / 3))

    def _unanswered(self, error: BaseException) -> None:
        """The shared log did not answer a lease statement: the node refuses new work
        (`unreachable`) until one is answered, and once that has lasted two thirds of a
        lease, it gives up all it holds before the table does (and the node stops
        working, whether it held shards or not: what it was doing can no longer end)."""
        if self._unreachable_since is None:
            self._unreachable_since = time.time()
        self._last_error = str(error) or "no answer in time"
        silent_s = self._monotonic() - self._answered_at
        if silent_s >= self.lease_s * 2 / 3:
            self._lose(
                frozenset(self.held),
                f"the shared log did not answer for {silent_s:.1f} s ({self._last_error}): "
                "this node's leases lapse",
            )
        else:
            logger.warning("the shared log does not answer (will retry): %s", self._last_error)

    def _answered(self) -> None:
        self._answered_at = self._monotonic()
        if self._unreachable_since is not None:
            logger.warning("the shared log answers again")
        self._unreachable_since = None

    def _told(self) -> ShardHolder:
        assert self._holder is not None, "start(holder) first"
        return self._holder

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()  # each statement of it bounded by `_patience_s`
            except asyncio.CancelledError:
                raise
            except StoreError as e:
                logger.warning("lease tick failed (will retry): %s", e)
            except Exception:
                logger.exception("lease tick failed")
            if self._contended:  # another node took a shard it wanted: plan again now
                self._contended = False
                await asyncio.sleep(CONTENDED_PAUSE_S)
                continue
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_s / 3):
                    await self._poke.wait()
