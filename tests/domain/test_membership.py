"""The membership view: nodes join, leave, and come back with a new incarnation."""

from __future__ import annotations

from caxton.domain import (
    NO_MEMBERS,
    SHARDS,
    MemberChanged,
    Membership,
    NodeStarted,
    NodeStopped,
    ShardClaimed,
    ShardReleased,
    alive,
    evolve_membership,
    owner,
    shard_of,
)
from caxton.domain import left as left_nodes
from tests.domain.domain_histories import Log


def folded(log: Log) -> Membership:
    members = NO_MEMBERS
    for recorded in log.recorded:
        members = evolve_membership(members, recorded)
    return members


def test_a_started_node_is_alive_in_its_first_incarnation() -> None:
    log = Log()
    log.add(NodeStarted(node="node-a", address="127.0.0.1:7946", version="0.1.0"), at=5)
    member = folded(log)["node-a"]
    assert (member.status, member.incarnation, member.since) == ("alive", 1, 5)


def test_a_stopped_node_has_left_and_a_restart_brings_it_back_in_a_new_incarnation() -> None:
    log = Log()
    log.add(NodeStarted(node="node-a", address="127.0.0.1:7946", version="0.1.0"))
    log.add(NodeStopped(node="node-a"))
    assert left_nodes(folded(log)) == {"node-a"}
    assert alive(folded(log)) == frozenset()
    log.add(NodeStarted(node="node-a", address="127.0.0.1:7947", version="0.2.0"))
    members = folded(log)
    assert alive(members) == {"node-a"}
    assert left_nodes(members) == frozenset()
    assert (members["node-a"].incarnation, members["node-a"].version) == (2, "0.2.0")


def test_stopping_an_unknown_node_changes_nothing() -> None:
    log = Log()
    log.add(NodeStopped(node="node-z"))
    assert folded(log) == NO_MEMBERS


def test_a_claim_deposes_the_previous_holder_and_a_release_frees_the_shard() -> None:
    log = Log()
    for node in ("node-a", "node-b"):
        log.add(NodeStarted(node=node, address="127.0.0.1:7946", version="0.1.0"))
    log.add(ShardClaimed(shard=3, node="node-a", epoch=1))
    assert owner(folded(log), 3) == "node-a"
    log.add(ShardClaimed(shard=3, node="node-b", epoch=2, previous="node-a", reason="expired"))
    members = folded(log)
    assert owner(members, 3) == "node-b"
    assert (members["node-a"].shards, members["node-b"].shards) == (frozenset(), {3})
    log.add(ShardReleased(shard=3, node="node-a", epoch=1))  # a deposed owner's late word
    assert owner(folded(log), 3) == "node-b"
    log.add(ShardReleased(shard=3, node="node-b", epoch=2))
    assert owner(folded(log), 3) is None


def test_the_failure_detector_marks_a_node_suspect_then_dead_never_reviving_one_that_left() -> None:
    log = Log()
    log.add(NodeStarted(node="node-a", address="127.0.0.1:7946", version="0.1.0"))
    log.add(MemberChanged(node="node-a", state="suspect", by="node-b"), at=7)
    assert (folded(log)["node-a"].status, folded(log)["node-a"].since) == ("suspect", 7)
    log.add(MemberChanged(node="node-a", state="dead", by="node-b"))
    assert folded(log)["node-a"].status == "dead"
    log.add(NodeStopped(node="node-a"))
    log.add(MemberChanged(node="node-a", state="alive", by="node-c"))
    assert folded(log)["node-a"].status == "left"


def test_an_agent_s_shard_is_stable_and_in_range() -> None:
    # fixed values: a change of hash would move every agent of a running cluster
    assert [shard_of(name) for name in ("alice", "bob", "order-processor")] == [9, 18, 51]
    assert all(0 <= shard_of(f"agent-{i}") < SHARDS for i in range(1000))
    assert len({shard_of(f"agent-{i}") for i in range(1000)}) == SHARDS
