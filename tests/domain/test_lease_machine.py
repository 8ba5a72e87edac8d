"""Lease keepers against a model of the lease table: one writer per shard, epochs that
only rise, a deposed node's appends refused, the folded membership agreeing with the
table, and, once the cluster settles, every shard held and none hoarded.

Everything here is pure: the lease table of `caxton/shell/store/postgres.py` is a small
state machine (`LeaseTable`, each statement quoted beside its model), and a node's lease
keeper (`caxton/shell/cluster/leases.py`) is `Keeper` with the tick it runs, deciding
with the real `caxton.domain.placement.plan` and recording events folded by the real
`caxton.domain.membership.evolve`. One clock stands for PostgreSQL's and every node's
(no drift). Hypothesis interleaves joins, deaths, pauses, graceful leaves, clock jumps,
ticks split between planning and acting (so that claims race), fenced appends and
failure-detector verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from caxton.domain import (
    NO_MEMBERS,
    Event,
    MemberChanged,
    Membership,
    NodeStarted,
    NodeStopped,
    ShardClaimed,
    ShardReleased,
    evolve_membership,
    owner,
)
from caxton.domain.placement import LeaseView, Plan, fair_share, plan
from tests.domain.domain_histories import Log

LEASE_S = 9.0
"""A lease's length; the keeper's patience is one lease, and it ticks every third of one
(LeaseKeeper: `patience_s=self.lease_s`, a wait of `lease_s / 3`). Nine seconds keeps
every sum of the clock exact in binary floating point."""
PATIENCE_S = LEASE_S
TICK_S = LEASE_S / 3
SHARD_COUNT = 6
NAMES = ("a", "b", "c", "d")
RELEASED = -math.inf
"""PostgreSQL's '-infinity' in `expires_at`: never claimed, or given up."""
SETTLE_TICKS = int((LEASE_S + 2 * PATIENCE_S) / TICK_S) + 5
"""Rounds of ticks that settle the cluster: a lease renewed just before its holder died
runs out within one lease, a tick sees it free within one more, a node over its share
claims it a patience later, and a round or two more move what exceeds a share; then a
patience and a few rounds more, to see that no shard is left to nobody again."""

Process = Literal["running", "paused", "dead", "left", "deposed"]


@dataclass(slots=True)
class Row:
    owner: str = ""
    epoch: int = 0
    expires_at: float = RELEASED


class LeaseTable:
    """The lease table, statement by statement; `now` is PostgreSQL's clock_timestamp().

    Schema: `shard integer PRIMARY KEY, owner text NOT NULL DEFAULT '', epoch bigint NOT
    NULL DEFAULT 0, expires_at timestamptz NOT NULL DEFAULT '-infinity'`."""

    def __init__(self, shards: int) -> None:
        self.rows = {shard: Row() for shard in range(shards)}

    def leases(self, now: float) -> dict[int, LeaseView]:
        # SELECT shard, owner, epoch, CASE WHEN isfinite(expires_at)
        #   THEN EXTRACT(EPOCH FROM expires_at - clock_timestamp()) END ... ORDER BY shard
        # (a NULL, not finite, is read as -inf)
        return {
            shard: LeaseView(
                shard=shard,
                owner=row.owner,
                epoch=row.epoch,
                expires_in_s=row.expires_at - now if math.isfinite(row.expires_at) else -math.inf,
            )
            for shard, row in self.rows.items()
        }

    def claim(self, shard: int, node: str, seen: int, ttl_s: float, now: float) -> int | None:
        """caxton_claim_shard: the new epoch, or None (ClaimRefused)."""
        row = self.rows[shard]
        # UPDATE leases SET owner = p_node, epoch = epoch + 1,
        #        expires_at = clock_timestamp() + make_interval(secs => p_ttl_s)
        #  WHERE shard = p_shard AND epoch = p_seen
        #    AND (owner = '' OR owner = p_node OR expires_at <= clock_timestamp())
        if row.epoch == seen and (row.owner in ("", node) or row.expires_at <= now):
            row.owner, row.epoch, row.expires_at = node, row.epoch + 1, now + ttl_s
            return row.epoch
        return None

    def renew(self, node: str, held: Mapping[int, int], ttl_s: float, now: float) -> set[int]:
        # UPDATE leases AS l SET expires_at = clock_timestamp() + make_interval(secs => ttl)
        #   FROM unnest(shards, epochs) AS h(shard, epoch)
        #  WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = node
        #    AND l.expires_at > '-infinity' RETURNING l.shard
        renewed = set()
        for shard, epoch in held.items():
            row = self.rows[shard]
            if row.epoch == epoch and row.owner == node and row.expires_at > RELEASED:
                row.expires_at = now + ttl_s
                renewed.add(shard)
        return renewed

    def release_fenced(self, node: str, fence: Mapping[int, int]) -> bool:
        """caxton_append with a release (a hand-over): whether it was accepted; the
        `ShardReleased` events are inserted in the same transaction when it was."""
        # PERFORM caxton_check_fence(fence_shards, fence_epochs);  (raises 'lease lost')
        # UPDATE leases SET expires_at = '-infinity'
        #  WHERE shard = ANY(fence_shards) AND owner = release_node;
        if not self.fence_holds(fence):
            return False
        for shard in fence:
            if self.rows[shard].owner == node:
                self.rows[shard].expires_at = RELEASED
        return True

    def fence_holds(self, fence: Mapping[int, int]) -> bool:
        # caxton_check_fence: RAISE 'lease lost' when any row of
        #   unnest(shards, epochs) AS f LEFT JOIN leases AS l ON l.shard = f.shard
        #   WHERE l.epoch IS DISTINCT FROM f.epoch
        return all(self.rows[shard].epoch == epoch for shard, epoch in fence.items())


@dataclass(frozen=True, slots=True)
class Planned:
    """A tick's plan, made at `at` on the table as it read it then."""

    at: float
    leases: dict[int, LeaseView]
    decided: Plan


@dataclass(slots=True)
class Keeper:
    """One node process and its lease keeper: what it holds (shard → epoch), when it
    first saw each shard free, what it rescued (claimed beyond its share) while the
    count of live nodes was `rescued_live`, and a plan made but not yet acted on."""

    node: str
    incarnation: int
    process: Process = "running"
    held: dict[int, int] = field(default_factory=dict)
    free_since: dict[int, float] = field(default_factory=dict)
    rescued: set[int] = field(default_factory=set)
    rescued_live: int = 0
    planned: Planned | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A claim the table granted: the ghost history the invariants check against."""

    epoch: int
    node: str
    incarnation: int


def _note(text: str) -> None:
    if currently_in_test_context():  # the example tests below drive the machine by hand
        note(text)


def _event(text: str) -> None:
    if currently_in_test_context():
        event(text)


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000.0
        self.table = LeaseTable(SHARD_COUNT)
        self.keepers: dict[str, Keeper] = {}
        self.log = Log()
        self.members: Membership = NO_MEMBERS
        self.grants: dict[int, list[Grant]] = {shard: [] for shard in range(SHARD_COUNT)}
        self.epochs_seen = {shard: 0 for shard in range(SHARD_COUNT)}

    # --- who can do what -------------------------------------------------------

    def _in(self, *processes: Process) -> list[str]:
        return sorted(k.node for k in self.keepers.values() if k.process in processes)

    def _can_start(self) -> list[str]:
        return [
            n for n in NAMES if n not in self.keepers or n in self._in("dead", "left", "deposed")
        ]

    def _planning(self) -> list[str]:
        return [n for n in self._in("running") if self.keepers[n].planned is None]

    def _acting(self) -> list[str]:
        return [n for n in self._in("running") if self.keepers[n].planned is not None]

    # --- the log and the table, as the shell uses them ----------------------------

    def _record(self, event: Event) -> None:
        recorded = self.log.add(event, at=int(self.now * 1000))
        self.members = evolve_membership(self.members, recorded)

    def _commit(self, keeper: Keeper, event: Event) -> bool:
        """The node's append, fenced with every shard it holds (its coarse fence); a
        refused one deposes it (LeaseLost: it refuses all work and restarts)."""
        accepted = self._fenced(keeper, keeper.held, self.table.fence_holds(keeper.held))
        if accepted:
            self._record(event)
        else:
            self._depose(keeper)
        return accepted

    def _hand_over(self, keeper: Keeper, given: Mapping[int, int]) -> bool:
        """EventLog.release with its events: each ShardReleased recorded and the rows
        freed in one transaction fenced by `given`, or neither."""
        accepted = self._fenced(keeper, given, self.table.release_fenced(keeper.node, given))
        if accepted:
            for shard, epoch in sorted(given.items()):
                self._record(ShardReleased(shard=shard, node=keeper.node, epoch=epoch))
        else:
            _event("a hand-over the fence refused")
        return accepted

    def _fenced(self, keeper: Keeper, fence: Mapping[int, int], accepted: bool) -> bool:
        """A fenced append is refused exactly when the node lost one of its shards:
        another claim of it was granted since the node's own."""
        lost = {
            shard
            for shard, epoch in fence.items()
            if self.grants[shard][-1] != Grant(epoch, keeper.node, keeper.incarnation)
        }
        assert accepted == (not lost), (
            f"{keeper.node}'s append fenced by {dict(fence)} was "
            f"{'accepted' if accepted else 'refused'}; it lost {sorted(lost)}"
        )
        return accepted

    def _depose(self, keeper: Keeper) -> None:
        # The node refuses all work and its server restarts the process (execv): the
        # keeper neither renews nor releases again; its leases run out.
        _note(f"{keeper.node} is deposed")
        _event("a node deposed")
        keeper.process = "deposed"
        keeper.planned = None

    def _plan(self, keeper: Keeper, live: int) -> None:
        """LeaseKeeper.tick up to its plan: renew, read the table, plan."""
        renewed = self.table.renew(keeper.node, keeper.held, LEASE_S, self.now)
        lost = keeper.held.keys() - renewed
        taken = {
            shard
            for shard, epoch in keeper.held.items()
            if self.grants[shard][-1] != Grant(epoch, keeper.node, keeper.incarnation)
        }
        assert lost == taken, f"{keeper.node} renewed {renewed} of {keeper.held}"
        if lost:
            for shard in lost:
                del keeper.held[shard]
            self._depose(keeper)  # shards_lost: the node fails
            return
        leases = self.table.leases(self.now)
        for shard, lease in leases.items():
            if lease.free and shard not in keeper.held:
                keeper.free_since.setdefault(shard, self.now)
            else:
                keeper.free_since.pop(shard, None)
        if live != keeper.rescued_live:  # a node came or went: the share is another
            keeper.rescued, keeper.rescued_live = set(), live
        decided = plan(
            keeper.node,
            leases,
            keeper.held,
            live=live,
            orphaned_for={s: self.now - t for s, t in keeper.free_since.items()},
            patience_s=PATIENCE_S,
            rescued=keeper.rescued & keeper.held.keys(),
        )
        keeper.rescued.update(decided.rescued)
        _note(f"{keeper.node} plans {decided} holding {sorted(keeper.held)}, {live} live")
        keeper.planned = Planned(self.now, leases, decided)

    def _act(self, keeper: Keeper) -> None:
        """The rest of LeaseKeeper.tick: give up, then claim, as planned."""
        assert keeper.planned is not None
        planned, keeper.planned = keeper.planned, None
        for shard in planned.decided.release:
            # the node stops the shard's agents, then the keeper hands it over
            if not self._hand_over(keeper, {shard: keeper.held[shard]}):
                return  # LeaseLost raised out of the tick; its next renewal finds the loss
            del keeper.held[shard]
        for shard in planned.decided.claim:
            lease = planned.leases[shard]
            row = self.table.rows[shard]
            before = Row(row.owner, row.epoch, row.expires_at)
            epoch = lease.epoch + 1  # the keeper's, from the lease it read
            if self.table.claim(shard, keeper.node, lease.epoch, LEASE_S, self.now) is None:
                # ClaimRefused: only ever because the row changed since the node read it
                # (another node claimed it, or its holder renewed it): plan claims only
                # what the table would grant on the view it was given
                assert (before.owner, before.epoch, before.expires_at - planned.at) != (
                    lease.owner,
                    lease.epoch,
                    lease.expires_in_s,
                ), f"{keeper.node}'s claim of shard {shard} on an unchanged {lease}"
                _event("a claim refused")
                continue
            # leases never overlap: the previous one had run out, or been given up
            assert before.owner in ("", keeper.node) or before.expires_at <= self.now, before
            # the claim and its event commit in one transaction
            self._record(
                ShardClaimed(
                    shard=shard,
                    node=keeper.node,
                    epoch=epoch,
                    previous=lease.owner,
                    reason=lease.why_free,
                )
            )
            self.grants[shard].append(Grant(epoch, keeper.node, keeper.incarnation))
            keeper.held[shard] = epoch
            keeper.free_since.pop(shard, None)

    def _tick(self, keeper: Keeper, live: int) -> None:
        self._plan(keeper, live)
        if keeper.planned is not None:
            self._act(keeper)

    # --- rules ------------------------------------------------------------------

    @initialize(count=st.integers(0, 3))
    def cluster(self, count: int) -> None:
        """Most runs start from a cluster of a few nodes that hold every shard."""
        for name in NAMES[:count]:
            self.keepers[name] = Keeper(name, 1)
            self._record(NodeStarted(node=name, address=f"{name}:7946", version="0"))
        if count:
            self.settle(0)

    @precondition(lambda self: self._can_start())
    @rule(data=st.data())
    def join(self, data: st.DataObject) -> None:
        """A node starts (or restarts, in a new incarnation) and records NodeStarted."""
        name = data.draw(st.sampled_from(self._can_start()), label="node")
        known = self.keepers.get(name)
        keeper = Keeper(name, 1 if known is None else known.incarnation + 1)
        self.keepers[name] = keeper
        assert self._commit(keeper, NodeStarted(node=name, address=f"{name}:7946", version="0"))

    @precondition(lambda self: self._in("running", "paused"))
    @rule(data=st.data())
    def die(self, data: st.DataObject) -> None:
        """SIGKILL: the node stops renewing, records nothing, releases nothing."""
        keeper = self.keepers[
            data.draw(st.sampled_from(self._in("running", "paused")), label="node")
        ]
        keeper.process, keeper.planned = "dead", None

    @precondition(lambda self: self._in("running"))
    @rule(data=st.data())
    def pause(self, data: st.DataObject) -> None:
        """SIGSTOP (or a long collection, a frozen VM), in the middle of a tick or not."""
        self.keepers[
            data.draw(st.sampled_from(self._in("running")), label="node")
        ].process = "paused"

    @precondition(lambda self: self._in("paused"))
    @rule(data=st.data())
    def wake(self, data: st.DataObject) -> None:
        """SIGCONT: the node goes on where it stopped, believing what it believed."""
        self.keepers[
            data.draw(st.sampled_from(self._in("paused")), label="node")
        ].process = "running"

    @precondition(lambda self: self._in("running"))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        """SIGTERM, in the server's order: the keeper halts; the node hands every shard
        over (each ShardReleased and the freed rows in one fenced transaction: all or,
        if it lost one, none, and the keeper forgets them either way), then records
        NodeStopped, fenced by what the keeper still holds: nothing."""
        self._leave(self.keepers[data.draw(st.sampled_from(self._in("running")), label="node")])

    def _leave(self, keeper: Keeper) -> None:
        keeper.planned = None
        given, keeper.held = keeper.held, {}
        if given:
            self._hand_over(keeper, given)
        assert self._commit(keeper, NodeStopped(node=keeper.node))
        keeper.process = "left"

    @precondition(lambda self: self._in("paused"))
    @rule(data=st.data())
    def stop_paused(self, data: st.DataObject) -> None:
        """SIGTERM to a paused node, then SIGCONT: it stops before its keeper ticks
        again, handing over shards that may have been taken meanwhile."""
        name = data.draw(st.sampled_from(self._in("paused")), label="node")
        self.keepers[name].process = "running"
        self._leave(self.keepers[name])

    @rule(seconds=st.sampled_from([0.5, 1.0, TICK_S, 4.5, LEASE_S, LEASE_S + 1.5]))
    def advance(self, seconds: float) -> None:
        """Time passes: for nodes that do not tick (a busy machine), leases run out."""
        self.now += seconds

    @precondition(lambda self: self._planning())
    @rule(data=st.data(), live=st.integers(1, len(NAMES)))
    def plan_tick(self, data: st.DataObject, live: int) -> None:
        """A keeper renews, reads the table and plans (`live`: the failure detector's
        count, a hint that may be wrong), but does not act yet: others may act first."""
        self._plan(self.keepers[data.draw(st.sampled_from(self._planning()), label="node")], live)

    @precondition(lambda self: self._acting())
    @rule(data=st.data())
    def act(self, data: st.DataObject) -> None:
        """A keeper gives up and claims as it planned, on what may be a stale view."""
        self._act(self.keepers[data.draw(st.sampled_from(self._acting()), label="node")])

    @precondition(lambda self: self._planning())
    @rule(data=st.data(), live=st.integers(1, len(NAMES)))
    def tick(self, data: st.DataObject, live: int) -> None:
        """A whole tick: renew, plan, give up, claim."""
        self._tick(self.keepers[data.draw(st.sampled_from(self._planning()), label="node")], live)

    @precondition(lambda self: self._in("running"))
    @rule(data=st.data())
    def append(self, data: st.DataObject) -> None:
        """A fenced append (a handling, say) with the epochs the node believes it holds:
        accepted exactly when no other claim was granted since each of its own."""
        keeper = self.keepers[data.draw(st.sampled_from(self._in("running")), label="node")]
        self._commit(keeper, MemberChanged(node=keeper.node, state="alive", by=keeper.node))

    @precondition(lambda self: self._in("running"))
    @rule(data=st.data(), state=st.sampled_from(["alive", "suspect", "dead", "left"]))
    def verdict(
        self, data: st.DataObject, state: Literal["alive", "suspect", "dead", "left"]
    ) -> None:
        """A failure detector's verdict on any node, recorded by a running node: a hint
        that must move no shard in the fold."""
        by = self.keepers[data.draw(st.sampled_from(self._in("running")), label="by")]
        about = data.draw(st.sampled_from(sorted(self.keepers)), label="about")
        self._commit(by, MemberChanged(node=about, state=state, by=by.node))

    @precondition(lambda self: self._in("running"))
    @rule(off=st.sampled_from([0, 0, 1, -1]))
    def settle(self, off: int) -> None:
        """Every running node ticks every third of a lease, counting the live nodes `off`
        by some, for a lease plus a patience and a few rounds more.

        What plan() promises, and no more: after a lease (a dead or paused holder's lease
        runs out) and a patience, no shard is left to nobody for longer than a patience
        and two ticks ("a wrong count of live nodes may leave a shard to nobody, never for
        long"), and at the end every shard is held by a running node, whatever the count
        (what a node rescued it keeps while the count stands); with the right count, none
        holds more than its share plus one besides what it rescued ("It gives up what it
        holds beyond its share plus one, except those it rescued")."""
        for name in self._acting():
            self._act(self.keepers[name])
        settled_at = self.now + LEASE_S + PATIENCE_S + 2 * TICK_S
        unheld_since: dict[int, float] = {}
        for _ in range(SETTLE_TICKS):
            self.now += TICK_S
            for name in self._in("running"):
                if self.keepers[name].process == "running":  # not deposed by now
                    self._tick(self.keepers[name], max(1, len(self._in("running")) + off))
            if not self._in("running"):
                return  # every running node was deposed: no live ticking node is left
            for shard in self.table.rows:
                if self._held_by_a_running_node(shard):
                    unheld_since.pop(shard, None)
                    continue
                since = max(unheld_since.setdefault(shard, self.now), settled_at)
                assert self.now - since <= PATIENCE_S + 2 * TICK_S, (
                    f"shard {shard} held by no running node since {since}, now {self.now}"
                )
        running = self._in("running")
        for shard, row in self.table.rows.items():
            assert self._held_by_a_running_node(shard), f"shard {shard}: {row}"
        if off == 0:
            share = fair_share(len(running), SHARD_COUNT)
            counted = {
                name: sorted(self.keepers[name].held.keys() - self.keepers[name].rescued)
                for name in running
            }
            assert max(map(len, counted.values())) <= share + 1, f"{counted}, share {share}"

    def _held_by_a_running_node(self, shard: int) -> bool:
        row = self.table.rows[shard]
        keeper = self.keepers.get(row.owner)
        return (
            keeper is not None
            and keeper.process == "running"
            and row.expires_at > self.now
            and keeper.held.get(shard) == row.epoch
        )

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def one_writer_per_shard(self) -> None:
        """At most one node whose fence would pass for a shard: the last one granted it."""
        for shard, row in self.table.rows.items():
            writers = [
                k
                for k in self.keepers.values()
                if k.process in ("running", "paused") and k.held.get(shard) == row.epoch
            ]
            assert len(writers) <= 1, f"shard {shard}: {[w.node for w in writers]}"
            for writer in writers:
                assert self.grants[shard][-1] == Grant(row.epoch, writer.node, writer.incarnation)
                assert row.owner == writer.node

    @invariant()
    def epochs_only_rise(self) -> None:
        """Per shard the table's epoch never goes back, and each granted claim raised it
        by one: epochs 1, 2, 3… each granted once."""
        for shard, row in self.table.rows.items():
            assert row.epoch >= self.epochs_seen[shard]
            self.epochs_seen[shard] = row.epoch
            granted = [g.epoch for g in self.grants[shard]]
            assert granted == list(range(1, row.epoch + 1)), f"shard {shard}: {granted}, {row}"

    @invariant()
    def the_fold_names_the_table_s_holder(self) -> None:
        """The membership folded from the recorded claims, hand-overs and stops names, per
        shard, the owner the table names: none for a shard never claimed or given up; the
        owner of an expired lease still (it may renew it, as long as no one claims it);
        and none for a lease whose holder stopped (NodeStopped after a hand-over the fence
        refused: the row runs out) or started again (NodeStarted supersedes its past)."""
        for shard, row in self.table.rows.items():
            expected: str | None = None
            if row.owner and row.expires_at > RELEASED:
                claimed_by = self.grants[shard][-1]
                holder = self.keepers[claimed_by.node]
                if holder.incarnation != claimed_by.incarnation:
                    _event("a lease of a past incarnation")
                elif holder.process == "left":
                    _event("a lease of a stopped node")
                else:
                    expected = row.owner
            assert owner(self.members, shard) == expected, f"shard {shard}: {row}"


LeaseMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLeaseMachine = LeaseMachine.TestCase


def test_a_node_stopped_after_losing_a_shard_hands_none_over_and_its_stop_forgets_the_rest() -> (
    None
):
    machine = LeaseMachine()
    machine.cluster(3)
    a, b = machine.keepers["a"], machine.keepers["b"]
    assert sorted(a.held) == [0, 5]
    a.process = "paused"
    machine.advance(LEASE_S + 1.5)
    machine._tick(b, 2)  # a share of 3: b takes one of a's expired shards, not both
    assert sorted(b.held) == [0, 2, 4]
    a.process = "running"  # SIGTERM, then SIGCONT
    machine._leave(a)
    # the hand-over, fenced by both shards, was refused whole: shard 5 stays a's in the
    # table until it runs out, while the fold, at a's NodeStopped, forgets it
    row = machine.table.rows[5]
    assert (row.owner, row.epoch) == ("a", 1) and row.expires_at > RELEASED
    assert owner(machine.members, 5) is None and owner(machine.members, 0) == "b"
    machine.the_fold_names_the_table_s_holder()
    machine.one_writer_per_shard()
