"""The local node's view of cluster membership, folded from node events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

from caxton.domain.events import (
    AgentDeployed,
    AgentFailed,
    AgentReconfigured,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import replace
from caxton.domain.frozen_map import FrozenMap

MemberStatus = Literal["alive", "left"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One node; `incarnation` counts its starts, so a restarted node supersedes its past."""

    node: str
    address: str
    version: str
    status: MemberStatus = "alive"
    incarnation: int = 1
    since: int = 0


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
            if known is None or known.status == "left":
                return members
            return members.set(node, replace(known, status="left", since=recorded.at))
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


def alive(members: Membership) -> frozenset[str]:
    return frozenset(m.node for m in members.values() if m.status == "alive")


def left(members: Membership) -> frozenset[str]:
    return frozenset(m.node for m in members.values() if m.status == "left")
