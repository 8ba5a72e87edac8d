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
    AgentSnapshotted,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    MemberChanged,
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
from caxton.domain.frozen import positional, replace
from caxton.domain.live_conversations import LiveConversations
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
            | AgentSnapshotted()
            | MessageQuarantined()
        ):
            return _world(
                agents_fold.evolve(world.agents, recorded),
                world.conversations,
                world.membership,
                recorded.position,
            )
        case NodeStarted() | NodeStopped() | ShardClaimed() | ShardReleased() | MemberChanged():
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
    """The world after every event in order, starting from `world` (folded in place by a
    `LiveWorld`: equal to `evolve` event by event)."""
    live = LiveWorld(world)
    for recorded in recorded_events:
        live.apply(recorded)
    return live.snapshot()


class LiveWorld:
    """The world folded in place, for its one owner (a server's loop, a loader): `apply`
    each recorded event, `snapshot()` when a reader needs a `World`.

    The fold's rules are the same as `evolve`'s, so a snapshot equals the persistent fold
    of the same events. Conversations change in place (caxton.domain.live_conversations);
    handlings are counted per instance and added to the agents when a snapshot, or any
    other agent event, needs them. A snapshot costs a copy of what changed since the
    last one, and is kept until the next change.
    """

    __slots__ = ("_agents", "_conversations", "_handled", "_membership", "_snapshot", "position")

    def __init__(self, world: World = EMPTY) -> None:
        self._agents = world.agents
        self._handled: dict[tuple[str, int], int] = {}
        self._conversations = LiveConversations(world.conversations)
        self._membership = world.membership
        self.position = world.position
        self._snapshot: World | None = world

    def apply(self, recorded: Recorded) -> None:
        """Folds one recorded event in."""
        self._snapshot = None
        self.position = recorded.position
        event = recorded.event
        match event:
            case MessageSent():
                self._conversations.sent(event, recorded.at, recorded.position)
            case MessageHandled():
                key = (event.agent, event.replica)
                handled = self._handled
                handled[key] = handled.get(key, 0) + 1
                self._conversations.handled(event, recorded.at)
            case MessageDeadLettered():
                self._conversations.failed(event, recorded.at)
            case AgentTrapped():
                self._agents = agents_fold.evolve(self._counted(), recorded)
                self._conversations.failed(event, recorded.at)
            case (
                AgentDeployed()
                | AgentStarted()
                | AgentRestarting()
                | AgentFailed()
                | AgentStopped()
                | AgentRemoved()
                | AgentReconfigured()
                | AgentSnapshotted()
                | MessageQuarantined()
            ):
                self._agents = agents_fold.evolve(self._counted(), recorded)
            case NodeStarted() | NodeStopped() | ShardClaimed() | ShardReleased() | MemberChanged():
                self._membership = membership_fold.evolve(self._membership, recorded)
            case (
                ToolCalled()
                | ToolReturned()
                | ToolFailed()
                | BreakerOpened()
                | BreakerHalfOpened()
                | BreakerClosed()
            ):
                pass  # facts for trace and replay, as in `evolve`
            case _:
                assert_never(event)

    @property
    def agents(self) -> Agents:
        """The agents as of the last event applied (what `snapshot().agents` holds),
        without bringing the conversations up to date."""
        return self._counted()

    @property
    def agents_uncounted(self) -> Agents:
        """The agents as of the last event applied, except `InstanceState.handled`, which
        may lack the handlings since the last snapshot or agent event: what a decision
        reads (lifecycles, capabilities, limits) without a copy of each agent that handled
        something. Adding up the counts costs a copy of the agent and its instance."""
        return self._agents

    def snapshot(self) -> World:
        """The world as of the last event applied: immutable, unchanged by later events."""
        if self._snapshot is None:
            self._snapshot = _world(
                self._counted(), self._conversations.frozen(), self._membership, self.position
            )
        return self._snapshot

    def _counted(self) -> Agents:
        """The agents with the handlings counted since the last time added, as
        `agents.handled` would have one by one (unknown agents and replicas ignored)."""
        if self._handled:
            self._agents = agents_fold.counted(self._agents, self._handled)
            self._handled = {}
        return self._agents
