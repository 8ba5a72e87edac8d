"""The local node's view of cluster membership, folded from node events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from caxton.domain.events import (
    AgentDeployed,
    AgentFailed,
    AgentReconfigured,
    AgentRemoved,
    AgentRestarting,
    AgentSnapshotted,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    MemberChanged,
    MemberState,
    MessageDeadLettered,
    MessageHandled,
    MessageQuarantined,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    ShardClaimed,
    ShardReleased,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import replace
from caxton.domain.frozen_map import FrozenMap


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One node; `incarnation` counts its starts, so a restarted node supersedes its past.

    `status` is what the log last said of it: `alive` from its start, `left` from its
    stop, `suspect` or `dead` when a peer's failure detector said so (a hint recorded, not
    a decision), `alive` again when it answered. `shards` are those whose lease it holds.
    """

    node: str
    address: str
    version: str
    status: MemberState = "alive"
    incarnation: int = 1
    since: int = 0
    shards: frozenset[int] = frozenset()


# One status per node makes "both alive and left" unrepresentable.
Membership = FrozenMap[str, Member]
NO_MEMBERS: Membership = FrozenMap()


def evolve(members: Membership, recorded: Recorded) -> Membership:
    """The membership after one recorded event."""
    event = recorded.event
    match event:
        case NodeStarted(node=node, address=address, version=version):
            known = members.get(node)
            incarnation = 1 if known is None else known.incarnation + 1
            member = Member(
                node=node,
                address=address,
                version=version,
                incarnation=incarnation,
                since=recorded.at,
            )
            return members.set(node, member)
        case NodeStopped(node=node):
            known = members.get(node)
            if known is None or (known.status == "left" and not known.shards):
                return members
            since = known.since if known.status == "left" else recorded.at
            return members.set(node, replace(known, status="left", since=since, shards=frozenset()))
        case ShardClaimed(shard=shard, node=node):
            members = _without_shard(members, shard)
            known = members.get(node)
            if known is None:
                return members
            return members.set(node, replace(known, shards=known.shards | {shard}))
        case ShardReleased(shard=shard, node=node):
            known = members.get(node)
            if known is None or shard not in known.shards:
                return members
            return members.set(node, replace(known, shards=known.shards - {shard}))
        case MemberChanged(node=node, state=state):
            known = members.get(node)
            if known is None or known.status == state or known.status == "left":
                return members  # a node that stopped is not brought back by a late rumour
            return members.set(node, replace(known, status=state, since=recorded.at))
        case (
            AgentDeployed()
            | AgentStarted()
            | AgentTrapped()
            | AgentRestarting()
            | AgentFailed()
            | AgentStopped()
            | AgentRemoved()
            | AgentReconfigured()
            | MessageSent()
            | MessageHandled()
            | MessageDeadLettered()
            | AgentSnapshotted()
            | MessageQuarantined()
            | ToolCalled()
            | ToolReturned()
            | ToolFailed()
            | BreakerOpened()
            | BreakerHalfOpened()
            | BreakerClosed()
        ):
            return members
        case _:
            assert_never(event)


def _without_shard(members: Membership, shard: int) -> Membership:
    """The shard taken from whoever held it: a claim deposes the previous owner."""
    for member in members.values():
        if shard in member.shards:
            return members.set(member.node, replace(member, shards=member.shards - {shard}))
    return members


def owner(members: Membership, shard: int) -> str | None:
    """The node holding `shard`'s lease, as the log last said; None when no one does."""
    for member in members.values():
        if shard in member.shards:
            return member.node
    return None


def alive(members: Membership) -> frozenset[str]:
    return frozenset(m.node for m in members.values() if m.status == "alive")


def left(members: Membership) -> frozenset[str]:
    return frozenset(m.node for m in members.values() if m.status == "left")
