"""The membership view: nodes join, leave, and come back with a new incarnation."""

from __future__ import annotations

from caxton.domain import NO_MEMBERS, Membership, NodeStarted, NodeStopped, alive, evolve_membership
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
