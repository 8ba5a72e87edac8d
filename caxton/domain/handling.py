"""The message path's decisions: what a batch of inputs appends, and what follows its commit.

The node gathers inputs (messages from clients, guest calls that returned, deliveries it
could not make, events decided elsewhere), asks `decide` for the events to append and the
effects to perform once they are committed, commits, folds, and performs the effects.
Everything here is data in, data out, without I/O: routing included, so it happens on the
node's thread after a guest call returns, never inside one. A `Decision` is the one thing
changed in place: the batch's accumulator, which `decide(..., into=)` extends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from caxton.domain.acl import AclMessage, is_final_reply
from caxton.domain.agents import Agents
from caxton.domain.events import (
    AgentSnapshotted,
    AgentStarted,
    AgentTrapped,
    Event,
    HostCall,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
)
from caxton.domain.frozen import positional
from caxton.domain.ids import conversation_stream, instance_key, is_client
from caxton.domain.routing import RouteCursor, route
from caxton.domain.sending import platform_failure

# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accept:
    """A message from an API client, its server-owned fields filled in and checked.
    `new_conversation`: its conversation id was made here, so its stream is new."""

    message: AclMessage
    new_conversation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Handled:
    """A guest call returned: `handle(message)`, or `init` when `message` is None.

    `sent` are the messages it sent, their host-owned fields filled in (not routed);
    `trap` is (kind, reason) when the call trapped, `error` the agent's own error;
    `dequeued_us` and `started_us` when the message left the mailbox and the call began
    (microseconds since the Unix epoch, as `MessageHandled`)."""

    agent: str
    replica: int
    incarnation: int
    message: AclMessage | None
    sent: tuple[AclMessage, ...] = ()
    journal: tuple[HostCall, ...] = ()
    tool_events: tuple[Event, ...] = ()
    duration_us: int = 0
    error: str = ""
    trap: tuple[str, str] | None = None
    cpu_us: int = 0
    start: AgentStarted | None = None
    """For `init`: the start as the actor recorded it (with what it did with its memory);
    None builds a plain one."""
    snapshot: AgentSnapshotted | None = None
    """The instance's memory taken after this handling (caxton.domain.memory)."""
    dequeued_us: int = 0
    started_us: int = 0


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A committed delivery the node could not make (the instance is gone, say)."""

    message: AclMessage
    receiver: str
    reason: str


@dataclass(frozen=True, slots=True)
class Append:
    """Events decided elsewhere (a deploy, a restart decision): appended as they are."""

    events: tuple[Event, ...]
    traceparent: str = ""
    new_streams: tuple[str, ...] = ()


Input = Accept | Handled | Undelivered | Append

# --- effects, performed in order once the batch is committed ----------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    """Queue `message` for the instance `target` (`name#replica`)."""

    target: str
    message: AclMessage


@dataclass(frozen=True, slots=True)
class Reply:
    """A final reply for a client that may be waiting for it."""

    client: str
    message: AclMessage


@dataclass(frozen=True, slots=True)
class Supervise:
    """An instance trapped (or failed to start): decide its restart from the history."""

    agent: str
    replica: int


Effect = Deliver | Reply | Supervise

# --- outcomes, one per input ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """A client's message is in the batch: where it goes and who could not take it."""

    deliveries: tuple[str, ...]
    dead_letters: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class MailboxRefused:
    """A client's message was not accepted: an instance it goes to has no room."""

    instance: str
    size: int


Outcome = Accepted | MailboxRefused | None

Room = Mapping[str, tuple[int, int]]
"""Per running instance (`name#replica`): (free slots in its mailbox, the mailbox's size).
An instance not listed takes what it is sent; the node finds out when it delivers."""


@dataclass(slots=True)
class Decision:
    """What a batch of inputs comes to: events to append (each with its trace context),
    effects to perform after the commit, one outcome per input, and the routing cursor
    and mailbox room to decide the next batch from."""

    cursor: RouteCursor
    room: Room = field(default_factory=dict)
    free: dict[str, int] = field(default_factory=dict)
    """Free mailbox slots left per instance asked about so far, as deliveries take them."""
    sizes: dict[str, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    traceparents: list[str] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    """For each input, the index of its first event in `events`."""
    new_streams: list[str] = field(default_factory=list)


def decide(
    agents: Agents,
    cursor: RouteCursor,
    room: Room,
    inputs: Sequence[Input],
    *,
    into: Decision | None = None,
) -> Decision:
    """The events and effects of `inputs`, in order. `into` continues an earlier decision
    of the same batch (its cursor and room; `cursor` and `room` are then not read),
    adding to its lists. Never raises for any input: what cannot be delivered is
    dead-lettered, a client's message that finds no room is refused."""
    decision = into if into is not None else Decision(cursor, room)
    for item in inputs:
        decision.starts.append(len(decision.events))
        if isinstance(item, Accept):
            decision.outcomes.append(_accept(agents, item, decision))
        elif isinstance(item, Handled):
            _handled(agents, item, decision)
            decision.outcomes.append(None)
        elif isinstance(item, Undelivered):
            start = len(decision.events)
            _dead_letter(agents, decision, item.message, item.receiver, item.reason)
            decision.traceparents.extend([""] * (len(decision.events) - start))
            decision.outcomes.append(None)
        else:
            decision.events.extend(item.events)
            decision.traceparents.extend([item.traceparent] * len(item.events))
            decision.new_streams.extend(item.new_streams)
            for event in item.events:  # what is committed is delivered, whoever decided it
                if isinstance(event, MessageSent):
                    decision.effects.extend(_deliveries(event.message, event.deliveries))
            decision.outcomes.append(None)
    return decision


def _accept(agents: Agents, item: Accept, decision: Decision) -> Outcome:
    message = item.message
    routed = route(message, agents, decision.cursor)
    for target in routed.deliveries:
        left = _left(decision, target)
        if left is not None and left <= 0:  # refused before anything is recorded
            return MailboxRefused(target, decision.sizes[target])
    decision.cursor = routed.cursor
    start = len(decision.events)
    _sent(agents, decision, message, routed.deliveries, routed.dead_letters, cause="")
    decision.traceparents.extend([""] * (len(decision.events) - start))
    if item.new_conversation:
        decision.new_streams.append(conversation_stream(message.conversation_id))
    return _accepted(routed.deliveries, routed.dead_letters)


def _handled(agents: Agents, item: Handled, decision: Decision) -> None:
    cause = item.message
    context = cause.traceparent if cause is not None else ""
    start = len(decision.events)
    decision.events.extend(item.tool_events)  # calls made before a trap happened all the same
    if item.trap is not None:
        kind, reason = item.trap
        decision.events.append(
            AgentTrapped(
                agent=item.agent,
                replica=item.replica,
                incarnation=item.incarnation,
                kind=kind,
                reason=reason,
                message_id=cause.id if cause is not None else "",
                conversation_id=cause.conversation_id if cause is not None else "",
                duration_us=item.duration_us,
                cpu_us=item.cpu_us,
                dequeued_us=item.dequeued_us,
                started_us=item.started_us,
            )
        )
        if cause is not None:
            receiver = instance_key(item.agent, item.replica)
            why = f"{kind}: {reason}"
            _dead_letter(agents, decision, cause, receiver, why, named=False)
        decision.effects.append(Supervise(item.agent, item.replica))
    else:
        if cause is None:
            decision.events.append(
                item.start
                or AgentStarted(
                    agent=item.agent,
                    replica=item.replica,
                    incarnation=item.incarnation,
                    journal=item.journal,
                )
            )
        else:
            decision.events.append(
                _handled_event(
                    cause.id,
                    cause.conversation_id,
                    item.agent,
                    item.replica,
                    item.journal,
                    item.duration_us,
                    item.error,
                    item.cpu_us,
                    item.dequeued_us,
                    item.started_us,
                )
            )
            if item.snapshot is not None:
                decision.events.append(item.snapshot)
        cause_id = cause.id if cause is not None else ""
        for message in item.sent:
            routed = route(message, agents, decision.cursor)
            decision.cursor = routed.cursor
            _sent(agents, decision, message, routed.deliveries, routed.dead_letters, cause_id)
        if item.error and cause is not None:
            _failure_to_sender(agents, decision, cause, item.error)
    decision.traceparents.extend([context] * (len(decision.events) - start))


def _sent(
    agents: Agents,
    decision: Decision,
    message: AclMessage,
    deliveries: tuple[str, ...],
    dead_letters: tuple[tuple[str, str], ...],
    cause: str,
) -> None:
    """A message sent: its event, its deliveries as effects (a full mailbox dead-letters),
    and the dead letters of receivers it cannot reach."""
    decision.events.append(_sent_event(message, deliveries, cause))
    free = decision.free
    full: list[tuple[str, str]] = []
    for target in deliveries:
        if is_client(target):
            if is_final_reply(message):
                decision.effects.append(_reply(target, message))
            continue
        left = _left(decision, target)
        if left is None:
            decision.effects.append(_deliver(target, message))
        elif left > 0:
            free[target] = left - 1
            decision.effects.append(_deliver(target, message))
        else:
            full.append((target, f"mailbox full ({decision.sizes[target]} messages)"))
    for receiver, reason in (*dead_letters, *full):
        _dead_letter(agents, decision, message, receiver, reason)


def _left(decision: Decision, target: str) -> int | None:
    """Free slots in `target`'s mailbox (None: unbounded, or not an instance), read from
    the room the first time the batch asks."""
    left = decision.free.get(target)
    if left is None:
        known = decision.room.get(target)
        if known is None:
            return None
        left, decision.sizes[target] = known
        decision.free[target] = left
    return left


def _dead_letter(
    agents: Agents,
    decision: Decision,
    message: AclMessage,
    receiver: str,
    reason: str,
    *,
    named: bool = True,
) -> None:
    """A dead letter, and a `failure` back to the sender naming the receiver (`named`),
    or giving only the reason (the receiver itself failed on the message)."""
    dead = MessageDeadLettered(
        message_id=message.id,
        conversation_id=message.conversation_id,
        receiver=receiver,
        reason=reason,
    )
    decision.events.append(dead)
    _failure_to_sender(agents, decision, message, f"{receiver}: {reason}" if named else reason)


def _failure_to_sender(
    agents: Agents, decision: Decision, message: AclMessage, reason: str
) -> None:
    """A `failure` from the platform back to whoever sent `message`, sent like any message
    (the platform gets no failures about its failures: a dead letter ends there)."""
    failure = platform_failure(message, reason)
    if failure is not None:
        routed = route(failure, agents, decision.cursor)
        decision.cursor = routed.cursor
        _sent(agents, decision, failure, routed.deliveries, routed.dead_letters, message.id)


def followed(event: Event) -> list[Effect]:
    """What a node of a cluster does about an event another node committed: the
    deliveries and replies of a message (it performs those it can: to the instances it
    runs, to clients waiting on it). Nothing for the other events."""
    if isinstance(event, MessageSent):
        return _deliveries(event.message, event.deliveries)
    return []


def _deliveries(message: AclMessage, deliveries: tuple[str, ...]) -> list[Effect]:
    """The deliveries of a message committed as it was decided elsewhere."""
    effects: list[Effect] = []
    for target in deliveries:
        if not is_client(target):
            effects.append(Deliver(target, message))
        elif is_final_reply(message):
            effects.append(Reply(target, message))
    return effects


# The hot path's values made without their frozen __init__ (one attribute store each
# instead of object.__setattr__): as the log's read path does (caxton.domain.frozen).
_sent_event: Callable[[AclMessage, tuple[str, ...], str], MessageSent] = positional(MessageSent)
_handled_event: Callable[..., MessageHandled] = positional(MessageHandled)
_deliver: Callable[[str, AclMessage], Deliver] = positional(Deliver)
_reply: Callable[[str, AclMessage], Reply] = positional(Reply)
_accepted: Callable[[tuple[str, ...], tuple[tuple[str, str], ...]], Accepted] = positional(Accepted)
