"""The whole folded state: agents, conversations and membership, up to a log position."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import assert_never

from caxton.domain import agents as agents_fold
from caxton.domain import conversations as conversations_fold
from caxton.domain import membership as membership_fold
from caxton.domain.agents import NO_AGENTS, Agents
from caxton.domain.conversations import NO_CONVERSATIONS, Conversations
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
from caxton.domain.frozen import positional, replace
from caxton.domain.membership import NO_MEMBERS, Membership


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """Everything the log says, as of `position` (0 before the first event)."""

    agents: Agents = NO_AGENTS
    conversations: Conversations = NO_CONVERSATIONS
    membership: Membership = NO_MEMBERS
    position: int = 0


EMPTY = World()


def evolve(world: World, recorded: Recorded) -> World:
    """The world after one recorded event, each event going to the folds that care."""
    event = recorded.event
    # The cases run in order: the message events, most of any log, come first.
    match event:
        case MessageSent():
            return _world(
                world.agents,
                conversations_fold.sent(world.conversations, event, recorded),
                world.membership,
                recorded.position,
            )
        case MessageHandled():
            return _world(
                agents_fold.handled(world.agents, event),
                conversations_fold.handled(world.conversations, event, recorded),
                world.membership,
                recorded.position,
            )
        case MessageDeadLettered():
            return _world(
                world.agents,
                conversations_fold.evolve(world.conversations, recorded),
                world.membership,
                recorded.position,
            )
        case AgentTrapped():
            return _world(
                agents_fold.evolve(world.agents, recorded),
                conversations_fold.evolve(world.conversations, recorded),
                world.membership,
                recorded.position,
            )
        case (
            AgentDeployed()
            | AgentStarted()
            | AgentRestarting()
            | AgentFailed()
            | AgentStopped()
            | AgentRemoved()
            | AgentReconfigured()
        ):
            return _world(
                agents_fold.evolve(world.agents, recorded),
                world.conversations,
                world.membership,
                recorded.position,
            )
        case NodeStarted() | NodeStopped():
            return _world(
                world.agents,
                world.conversations,
                membership_fold.evolve(world.membership, recorded),
                recorded.position,
            )
        case (
            ToolCalled()
            | ToolReturned()
            | ToolFailed()
            | BreakerOpened()
            | BreakerHalfOpened()
            | BreakerClosed()
        ):
            # facts for trace and replay; breakers live in the bridge (caxton.shell.tools)
            return replace(world, position=recorded.position)
        case _:
            assert_never(event)


# World(agents, conversations, membership, position) without the frozen __init__.
_world: Callable[[Agents, Conversations, Membership, int], World] = positional(World)


def fold(recorded_events: Iterable[Recorded], world: World = EMPTY) -> World:
    """The world after every event in order, starting from `world`."""
    for recorded in recorded_events:
        world = evolve(world, recorded)
    return world
