"""A conversation as the log recorded it: the events to step through, and what came before.

A `Recording` is what a loader (a server's log, a data directory, a bundle) hands to
the cursor, the views and the exporters. Its steps are the conversation's own events
(messages sent, handled, dead-lettered; traps while handling one of its messages)
and, interleaved in log order, the lifecycle events of the agents taking part
(a restart between two messages belongs to the story). Whatever the participants
went through before the first step is folded into `prelude`, so the state at any
step says which agents were running, with which limits, and how often they had
restarted.

In a cluster's log, a claim of a participant's shard between the first and the last
step is a step too (a takeover), and `holders` says who held the participants' shards
just before the first step, so that each step can name its node
(`caxton.replay.nodes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from caxton.domain.conversations import ConversationState, targets
from caxton.domain.events import (
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    ShardClaimed,
)
from caxton.domain.ids import PLATFORM, conversation_stream, is_client
from caxton.domain.placement import shard_of
from caxton.domain.protocols import agent_of
from caxton.domain.world import EMPTY, World, fold
from caxton.replay.nodes import NO_HOLDERS, Holders, holders_of

AGENT_EVENTS = (
    AgentDeployed,
    AgentStarted,
    AgentTrapped,
    AgentRestarting,
    AgentFailed,
    AgentStopped,
    AgentRemoved,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """One conversation's steps in log order, and the world just before the first."""

    conversation_id: str
    events: tuple[Recorded, ...]
    prelude: World = EMPTY
    holders: Holders = NO_HOLDERS
    """The nodes holding the participants' shards just before the first step (a
    cluster's log; empty otherwise)."""

    @property
    def clustered(self) -> bool:
        """Whether the log is a cluster's: a participant's shard was claimed, or a node
        stamped a step."""
        return bool(self.holders) or any(
            r.node or isinstance(r.event, ShardClaimed) for r in self.events
        )

    @property
    def conversation(self) -> ConversationState | None:
        """The conversation as its last step left it."""
        return fold(self.events, self.prelude).conversations.get(self.conversation_id)


def belongs(recorded: Recorded, conversation_id: str) -> bool:
    """Whether an event is one of the conversation's own (not a participant's lifecycle)."""
    if recorded.stream == conversation_stream(conversation_id):
        return True
    event = recorded.event
    return isinstance(event, AgentTrapped) and event.conversation_id == conversation_id


def participants(events: Iterable[Recorded]) -> list[str]:
    """The agents a conversation's events name, in order of appearance (clients excluded)."""
    seen: dict[str, None] = {}
    for recorded in events:
        event = recorded.event
        match event:
            case MessageSent(message=m):
                names = (agent_of(m.sender), *targets(event))
            case MessageHandled(agent=a) | AgentTrapped(agent=a):
                names = (a,)
            case MessageDeadLettered(receiver=r):
                names = (agent_of(r),)
            case _:
                names = ()
        for name in names:
            if name and not is_client(name) and name != PLATFORM:
                seen.setdefault(name, None)
    return list(seen)


def record(conversation_id: str, history: Iterable[Recorded]) -> Recording:
    """The recording of one conversation from the events a loader found: the
    conversation's stream and its participants' agent streams, in any order.

    Agent events before the conversation's first event go to the prelude; those up
    to its last event are steps; later ones are not part of this story (yet). So do the
    claims of the participants' shards (a cluster's `shard:N` streams), when the loader
    found them."""
    ordered = sorted(history, key=lambda r: r.position)
    own = [r for r in ordered if belongs(r, conversation_id)]
    if not own:
        return Recording(conversation_id=conversation_id, events=())
    first, last = own[0].position, own[-1].position
    names = set(participants(own))
    shards = {shard_of(name) for name in names}
    before: list[Recorded] = []
    steps: list[Recorded] = []
    for recorded in ordered:
        if belongs(recorded, conversation_id):
            steps.append(recorded)
        elif isinstance(recorded.event, AGENT_EVENTS) and recorded.event.agent in names:
            if recorded.position < first:
                before.append(recorded)
            elif recorded.position <= last:
                steps.append(recorded)
        elif _is_takeover(recorded, shards) and first < recorded.position <= last:
            steps.append(recorded)
    claims = [r for r in ordered if r.position < first]
    return Recording(
        conversation_id=conversation_id,
        events=tuple(steps),
        prelude=fold(before),
        holders=holders_of(claims, shards),
    )


def _is_takeover(recorded: Recorded, shards: set[int]) -> bool:
    """A claim of one of `shards`: it moved a participant to a node (from another one)."""
    event = recorded.event
    return isinstance(event, ShardClaimed) and event.shard in shards


def extend(recording: Recording, recorded: Recorded) -> Recording:
    """The recording with one more event of a live conversation (ignored if already held
    or not part of the story)."""
    if recording.events and recorded.position <= recording.events[-1].position:
        return recording
    event = recorded.event
    own = belongs(recorded, recording.conversation_id)
    if not own:
        names = set(participants(recording.events))
        shards = {shard_of(name) for name in names} if isinstance(event, ShardClaimed) else set()
        named = isinstance(event, AGENT_EVENTS) and event.agent in names
        if not (named or _is_takeover(recorded, shards)):
            return recording
    return Recording(
        conversation_id=recording.conversation_id,
        events=(*recording.events, recorded),
        prelude=recording.prelude,
        holders=recording.holders,
    )
