"""The world folded in place (`LiveWorld`) equals the persistent fold, snapshot by snapshot."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caxton.domain import (
    EMPTY,
    AgentDeployed,
    Agents,
    AgentState,
    MessageHandled,
    Recorded,
    World,
    evolve,
)
from caxton.domain.conversations import RETIRE_AFTER_MS, RETIRE_OPEN_AFTER_MS
from caxton.domain.world import LiveWorld, fold
from tests.domain.domain_histories import Log, P, histories

fast = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Gaps between events: none, small, a window or so, an hour or so, and the clock set back.
WINDOWS = [RETIRE_AFTER_MS - 1, RETIRE_AFTER_MS, 2 * RETIRE_AFTER_MS]
HOURS = [RETIRE_OPEN_AFTER_MS, RETIRE_OPEN_AFTER_MS + 1]
GAPS = st.sampled_from([0, 0, 1, 500, *WINDOWS, *HOURS, -5_000, -RETIRE_AFTER_MS])


@st.composite
def retimed(draw: st.DrawFn) -> list[Recorded]:
    """A plausible history whose clock jumps: across windows, past an hour, and back."""
    log = draw(histories(max_steps=60))
    at, out = 1_000_000_000, []
    for recorded in log:
        at = max(0, at + draw(GAPS))
        out.append(replace(recorded, at=at))
    return out


def persistent(log: list[Recorded], world: World = EMPTY) -> World:
    for recorded in log:
        world = evolve(world, recorded)
    return world


def same(live: World, expected: World) -> None:
    """Equal, and equal generation by generation, so that later events age them alike."""
    assert live == expected
    ours, theirs = live.conversations, expected.conversations
    assert ours.recent == theirs.recent
    assert ours.older == theirs.older
    assert ours.since == theirs.since
    assert ours.checked == theirs.checked


@fast
@given(histories() | retimed(), st.data())
def test_snapshots_at_any_steps_equal_the_persistent_fold_so_far(
    log: list[Recorded], data: st.DataObject
) -> None:
    live, world = LiveWorld(), EMPTY
    reads = data.draw(st.sets(st.integers(0, len(log))))
    for n, recorded in enumerate(log, start=1):
        live.apply(recorded)
        world = evolve(world, recorded)
        if n in reads:
            same(live.snapshot(), world)
    same(live.snapshot(), world)


@fast
@given(histories() | retimed(), st.data())
def test_folding_in_place_from_any_world_equals_the_persistent_fold(
    log: list[Recorded], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    start = persistent(log[:cut])
    same(fold(log[cut:], start), persistent(log[cut:], start))


@fast
@given(retimed(), st.data())
def test_a_snapshot_does_not_change_when_later_events_are_applied(
    log: list[Recorded], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(log)))
    live = LiveWorld()
    for recorded in log[:cut]:
        live.apply(recorded)
    taken = live.snapshot()
    for recorded in log[cut:]:
        live.apply(recorded)
    same(taken, persistent(log[:cut]))


def without_counts(agents: Agents) -> dict[str, AgentState]:
    return {
        name: replace(a, instances=tuple(replace(i, handled=0) for i in a.instances))
        for name, a in agents.items()
    }


@fast
@given(histories(), st.data())
def test_the_agents_read_between_snapshots_are_the_persistent_folds(
    log: list[Recorded], data: st.DataObject
) -> None:
    live, world = LiveWorld(), EMPTY
    reads = data.draw(st.sets(st.integers(0, len(log))))
    for n, recorded in enumerate(log, start=1):
        live.apply(recorded)
        world = evolve(world, recorded)
        if n in reads:  # uncounted: all but the handled counts, and no counting happens
            assert without_counts(live.agents_uncounted) == without_counts(world.agents)
        if n % 3 == 0:
            assert live.agents == world.agents
    same(live.snapshot(), world)


def test_a_snapshot_is_kept_until_the_next_event() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", conversation="c1", protocol="fipa-request")
    live = LiveWorld()
    live.apply(log.recorded[0])
    assert live.snapshot() is live.snapshot()
    log.send(P.INFORM, "bob", "alice", conversation="c1", protocol="fipa-request")
    before = live.snapshot()
    live.apply(log.recorded[1])
    after = live.snapshot()
    assert after is not before
    assert (before.conversations["c1"].outcome, after.conversations["c1"].outcome) == (
        "open",
        "done",
    )


def test_handlings_counted_before_a_redeploy_are_not_carried_into_it() -> None:
    log = Log()
    deploy = AgentDeployed(agent="bob", component="sha256:b", component_size=1, replicas=2)
    log.add(deploy)
    log.send(P.REQUEST, "alice", "bob", conversation="c1", protocol="fipa-request")
    handled = MessageHandled(message_id="m2", conversation_id="c1", agent="bob", replica=1)
    log.add(handled)
    log.add(handled)
    log.add(deploy)  # a redeploy starts every replica's count again
    log.add(handled)
    log.add(replace(handled, replica=7))  # no such replica: ignored
    log.add(replace(handled, agent="nobody"))  # no such agent: ignored
    world = fold(log.recorded)
    assert [i.handled for i in world.agents["bob"].instances] == [0, 1]
    same(world, persistent(log.recorded))


def test_handlings_of_several_replicas_between_two_reads_are_all_counted() -> None:
    log = Log()
    log.add(AgentDeployed(agent="bob", component="sha256:b", component_size=1, replicas=3))
    handled = MessageHandled(message_id="m1", conversation_id="c1", agent="bob", replica=0)
    for replica in (0, 2, 2, 0, 2):
        log.add(replace(handled, replica=replica))
    live = LiveWorld()
    for recorded in log.recorded:
        live.apply(recorded)
    assert [i.handled for i in live.agents["bob"].instances] == [2, 0, 3]
    same(live.snapshot(), persistent(log.recorded))
