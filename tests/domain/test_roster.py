"""Who runs what: each node's shards and agents, in a cluster and outside one."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caxton.domain import (
    EMPTY,
    SHARDS,
    MemberChanged,
    NodeStarted,
    NodeStopped,
    Recorded,
    ShardClaimed,
    fold,
    owner,
    shard_of,
)
from caxton.domain.roster import placement, roster
from tests.domain.domain_histories import Log, histories

# fixed shards (tests/domain/test_membership.py): alice 9, bob 18, order-processor 51
AGENTS = ("alice", "bob", "order-processor", "zed")


def two_nodes_and_a_suspect() -> Log:
    log = Log()
    for node in ("node-a", "node-b", "node-c"):
        log.add(NodeStarted(node=node, address=f"{node}:50051", version="0.1.0"))
    log.add(ShardClaimed(shard=9, node="node-a", epoch=1))
    log.add(ShardClaimed(shard=18, node="node-b", epoch=1))
    log.add(ShardClaimed(shard=51, node="node-b", epoch=1))
    log.add(MemberChanged(node="node-b", state="suspect", by="node-a"), at=7_000)
    log.add(NodeStopped(node="node-c"))
    return log


def test_in_a_cluster_each_node_runs_the_agents_on_the_shards_it_holds() -> None:
    world = fold(two_nodes_and_a_suspect().recorded)
    assert shard_of("zed") not in (9, 18, 51)

    seen = roster(world.membership, AGENTS, here="node-a", clustered=True)

    rows = {
        r.member.node: (r.member.status, sorted(r.member.shards), r.agents) for r in seen.members
    }
    assert rows == {
        "node-a": ("alive", [9], ("alice",)),
        "node-b": ("suspect", [18, 51], ("bob", "order-processor")),
        "node-c": ("left", [], ()),
    }
    assert [r.member.node for r in seen.members] == ["node-a", "node-b", "node-c"]
    assert seen.unowned_shards == tuple(s for s in range(SHARDS) if s not in (9, 18, 51))
    assert seen.unowned_agents == ("zed",)


def test_an_agent_on_a_shard_no_node_holds_runs_nowhere() -> None:
    world = fold(two_nodes_and_a_suspect().recorded)
    where = placement(world.membership, here="node-a", clustered=True)
    assert (where.node_of("bob"), where.node_of("alice"), where.node_of("zed")) == (
        "node-b",
        "node-a",
        "",
    )


def test_outside_a_cluster_the_node_answering_runs_every_agent() -> None:
    log = Log()
    log.add(NodeStarted(node="solo", address="127.0.0.1:50051", version="0.1.0"))
    world = fold(log.recorded)

    seen = roster(world.membership, AGENTS, here="solo", clustered=False)

    (only,) = seen.members
    assert (only.member.node, only.member.status, only.agents) == (
        "solo",
        "alive",
        tuple(sorted(AGENTS)),
    )
    assert (seen.unowned_shards, seen.unowned_agents) == ((), ())


def test_outside_a_cluster_shards_left_in_the_log_by_a_past_cluster_place_nothing() -> None:
    world = fold(two_nodes_and_a_suspect().recorded)
    where = placement(world.membership, here="node-c", clustered=False)
    assert {where.node_of(a) for a in AGENTS} == {"node-c"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.sampled_from((*AGENTS, "a0", "a1", "a2")), unique=True))
def test_every_agent_is_on_exactly_one_node_or_on_an_unowned_shard(
    log: list[Recorded], agents: list[str]
) -> None:
    world = fold(log, EMPTY)
    seen = roster(world.membership, agents, here="node-a", clustered=True)

    listed = [a for r in seen.members for a in r.agents] + list(seen.unowned_agents)
    assert sorted(listed) == sorted(agents)
    for r in seen.members:
        assert all(owner(world.membership, shard_of(a)) == r.member.node for a in r.agents)
    held = [s for r in seen.members for s in r.member.shards]
    assert sorted(held + list(seen.unowned_shards)) == list(range(SHARDS))
