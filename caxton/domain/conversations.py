"""The fold of conversations: who talks, how far each protocol got, and what broke it.

The live world holds the conversations still going on and those that ended a little
while ago, not every conversation the log has seen: a server that runs for months
must not grow with its history. A conversation retires from the world once it has
settled (done, failed or violated) and nothing happened in it for `RETIRE_AFTER_MS`,
or, when no protocol checks it, once it has been quiet that long. One that a protocol
still checks (someone's turn to answer) stays until it settles, or until it has been
quiet for `RETIRE_OPEN_AFTER_MS`. A retired conversation is still in the log, whole
(`caxton trace`, `caxton replay`, and a server answers a request for it by id from
there); a message that arrives in it later starts it afresh in the world, checked as
if it were the first (a late handling, dead letter or trap leaves the world alone).

Retirement is part of the fold, decided by the events' own times, so the world a
server holds is still exactly the fold of its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, assert_never

from caxton.domain.acl import AclMessage
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
from caxton.domain.frozen import copier, positional, replace
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.ids import instance_key, is_capability
from caxton.domain.protocols import (
    TABLES,
    ProtocolState,
    ReplyBy,
    agent_of,
    begin,
    checked_step,
    late_reason,
    outcome,
)

Outcome = Literal["open", "done", "failed", "violated"]
NO_ASKS: FrozenMap[str, ReplyBy] = FrozenMap()


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """A message that broke its conversation's protocol, and why."""

    position: int
    message_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationState:
    """One conversation. `failure` says what ended it when a dead letter or a trap did."""

    id: str
    protocol: str = ""
    initiator: str = ""
    participants: frozenset[str] = frozenset()
    message_count: int = 0
    handled: int = 0
    started_at: int = 0
    last_at: int = 0
    outcome: Outcome = "open"
    violations: tuple[Violation, ...] = ()
    dead_letters: int = 0
    traps: int = 0
    failure: str = ""
    protocol_state: ProtocolState | None = None
    asks: FrozenMap[str, ReplyBy] = NO_ASKS
    """Outside any protocol table: the messages with a reply-by, by the reference a reply
    names in `in_reply_to` (their reply-with, else their id)."""


# Violation(position, message_id, reason) without the frozen __init__.
_violation: Callable[[int, str, str], Violation] = positional(Violation)

RETIRE_AFTER_MS = 30_000
RETIRE_OPEN_AFTER_MS = 3_600_000


class Conversations(Mapping[str, ConversationState]):
    """The conversations the world holds, in two generations.

    Every change goes into `recent`. The first change `RETIRE_AFTER_MS` or more after
    the last change of generation makes a new one: `recent` becomes `older`, and what
    `older` held is dropped whole, except the conversations a protocol still checks,
    which are carried over. Under steady traffic a settled conversation therefore
    leaves one to two windows after its last event. A change of generation costs a
    pass over the open conversations (`checked`), not over the world: no pause that
    grows with the traffic. A server with no traffic changes nothing, and holds
    nothing new either.
    """

    __slots__ = ("checked", "older", "recent", "since")

    def __init__(
        self,
        recent: FrozenMap[str, ConversationState] | None = None,
        older: FrozenMap[str, ConversationState] | None = None,
        since: int = 0,
        checked: FrozenMap[str, bool] | None = None,
    ) -> None:
        self.recent: FrozenMap[str, ConversationState] = recent or _EMPTY
        self.older: FrozenMap[str, ConversationState] = older or _EMPTY
        self.since = since
        self.checked: FrozenMap[str, bool] = checked or _NONE_CHECKED
        """The ids of the conversations a protocol still checks (open, someone's turn)."""

    def __getitem__(self, cid: str) -> ConversationState:
        found = self.find(cid)
        if found is None:
            raise KeyError(cid)
        return found

    def find(self, cid: str) -> ConversationState | None:
        """The conversation, or None: `get` without its detour through `KeyError`."""
        found = self.recent.get(cid)
        return found if found is not None else self.older.get(cid)

    def __contains__(self, cid: object) -> bool:
        return cid in self.recent or cid in self.older

    def __iter__(self) -> Iterator[str]:
        yield from self.recent
        yield from self.older

    def __len__(self) -> int:
        return len(self.recent) + len(self.older)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping) or len(other) != len(self):
            return False
        return dict(self.items()) == dict(other.items())

    def __hash__(self) -> int:
        """Hashable like FrozenMap, by content: equal whichever generation holds what."""
        return hash(frozenset(self.items()))

    def __repr__(self) -> str:
        return f"Conversations({dict(self.items())!r})"

    def set(self, cid: str, conversation: ConversationState) -> Conversations:
        """A copy with `conversation` as `cid`'s state, in the recent generation."""
        older = self.older
        if older is not _EMPTY and cid in older:
            older = older.delete(cid)
        checked = self.checked
        if checked_by_protocol(conversation):
            if cid not in checked:
                checked = checked.set(cid, True)
        elif checked is not _NONE_CHECKED and cid in checked:
            checked = checked.delete(cid)
        return _conversations(self.recent.set(cid, conversation), older, self.since, checked)

    def aged(self, at: int) -> Conversations:
        """The conversations as of log time `at`: a new generation once a window has
        passed since the last."""
        if at < self.since:  # the clock was set back: the window counts from here
            return _conversations(self.recent, self.older, at, self.checked)
        if at - self.since < RETIRE_AFTER_MS:
            return self
        kept, checked = self.recent, self.checked
        for cid in self.checked:
            conversation = self.older.get(cid)
            if conversation is None:
                continue  # changed in this generation: it is in `recent`
            if at - conversation.last_at < RETIRE_OPEN_AFTER_MS:
                kept = kept.set(cid, conversation)
            else:
                checked = checked.delete(cid)  # quiet for an hour: it retires all the same
        return _conversations(_EMPTY, kept, at, checked)


def checked_by_protocol(conversation: ConversationFacts) -> bool:
    """Whether a protocol still checks the conversation: `Conversations.checked` holds
    exactly these."""
    return conversation.outcome == "open" and conversation.protocol_state is not None


def _conversations(
    recent: FrozenMap[str, ConversationState],
    older: FrozenMap[str, ConversationState],
    since: int,
    checked: FrozenMap[str, bool],
) -> Conversations:
    """Conversations(...) without `__init__`'s defaults: every change makes one."""
    new: Conversations = _new(Conversations)
    new.recent, new.older, new.since, new.checked = recent, older, since, checked
    return new


_new = object.__new__
_EMPTY: FrozenMap[str, ConversationState] = FrozenMap()
_NONE_CHECKED: FrozenMap[str, bool] = FrozenMap()
NO_CONVERSATIONS = Conversations()


def targets(sent: MessageSent) -> tuple[str, ...]:
    """The agents (or clients) a message was meant for, capabilities resolved by delivery."""
    deliveries, receivers = sent.deliveries, sent.message.receivers
    if len(deliveries) == 1 and len(receivers) == 1:  # most messages: one to one
        named = agent_of(deliveries[0])
        receiver = receivers[0]
        if receiver == named or is_capability(receiver):
            return (named,)
        return (named, receiver)
    everyone = [agent_of(d) for d in deliveries]
    everyone += [r for r in receivers if not is_capability(r)]
    return tuple(dict.fromkeys(everyone))


def evolve(conversations: Conversations, recorded: Recorded) -> Conversations:
    """The conversations after one recorded event; events without a conversation pass by."""
    return _apply(conversations, recorded, retire=True)


def every_conversation(recorded_events: Iterable[Recorded]) -> dict[str, ConversationState]:
    """Every conversation the events name, each folded whole: nothing retires. This is how
    a server answers, from its log, about conversations its live world let go."""
    held = NO_CONVERSATIONS
    for recorded in recorded_events:
        held = _apply(held, recorded, retire=False)
    return dict(held.items())


def sent(
    conversations: Conversations, event: MessageSent, recorded: Recorded, *, retire: bool = True
) -> Conversations:
    """`evolve` for a `MessageSent`, which the world calls directly: the most common event."""
    cid = event.message.conversation_id
    if not cid:
        return conversations
    if retire:
        conversations = conversations.aged(recorded.at)
    recent, older, checked = conversations.recent, conversations.older, conversations.checked
    before = recent.get(cid)
    if before is None:
        before = older.get(cid)
        if before is not None:
            older = older.delete(cid)  # it moves to the recent generation
    after = _sent(before or _begun(_UNBEGUN, cid, recorded.at, recorded.at), event, recorded)
    # `checked` changes only when whether the conversation is checked does
    now = checked_by_protocol(after)
    if now is not (before is not None and checked_by_protocol(before)):
        checked = checked.set(cid, True) if now else checked.delete(cid)
    return _conversations(recent.set(cid, after), older, conversations.since, checked)


def handled(
    conversations: Conversations, event: MessageHandled, recorded: Recorded, *, retire: bool = True
) -> Conversations:
    """`evolve` for a `MessageHandled`: one more handling, nothing else changes (so neither
    does whether a protocol still checks the conversation)."""
    cid = event.conversation_id
    if not cid:
        return conversations
    at = recorded.at
    if retire:
        conversations = conversations.aged(at)
    recent = conversations.recent
    found = recent.get(cid)
    if found is not None:
        counted = recent.set(cid, _counted(found, found.handled + 1, at))
        older, since, checked = conversations.older, conversations.since, conversations.checked
        return _conversations(counted, older, since, checked)
    found = conversations.older.get(cid)
    if found is None:  # retired before this late fact: the log keeps it
        return conversations
    return conversations.set(cid, _counted(found, found.handled + 1, at))


def _apply(conversations: Conversations, recorded: Recorded, *, retire: bool) -> Conversations:
    event = recorded.event
    match event:
        case MessageSent():
            return sent(conversations, event, recorded, retire=retire)
        case MessageHandled():
            return handled(conversations, event, recorded, retire=retire)
        case MessageDeadLettered(conversation_id=cid, receiver=receiver, reason=reason):
            if not cid:
                return conversations
            conversations = conversations.aged(recorded.at) if retire else conversations
            found = conversations.find(cid)
            if found is None:  # retired before this late fact: the log keeps it
                return conversations
            dead = replace(
                found,
                dead_letters=found.dead_letters + 1,
                last_at=recorded.at,
                failure=found.failure or f"dead letter to {receiver}: {reason}",
            )
            return conversations.set(cid, _settle(dead))
        case AgentTrapped(conversation_id=cid):
            if not cid:
                return conversations
            conversations = conversations.aged(recorded.at) if retire else conversations
            found = conversations.find(cid)
            if found is None:  # retired before this late fact: the log keeps it
                return conversations
            where = instance_key(event.agent, event.replica)
            trapped = replace(
                found,
                traps=found.traps + 1,
                last_at=recorded.at,
                failure=found.failure or f"{where} trapped: {event.kind}: {event.reason}",
            )
            return conversations.set(cid, _settle(trapped))
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
            | NodeStarted()
            | NodeStopped()
            | ShardClaimed()
            | ShardReleased()
            | MemberChanged()
            | ToolCalled()
            | ToolReturned()
            | ToolFailed()
            | BreakerOpened()
            | BreakerHalfOpened()
            | BreakerClosed()
        ):
            return conversations
        case _:
            assert_never(event)


class ConversationFacts(Protocol):
    """What a message's step reads of a conversation: a `ConversationState`, or the live
    fold's mutable record of one (caxton.domain.live_conversations)."""

    @property
    def initiator(self) -> str: ...
    @property
    def participants(self) -> frozenset[str]: ...
    @property
    def message_count(self) -> int: ...
    @property
    def protocol(self) -> str: ...
    @property
    def protocol_state(self) -> ProtocolState | None: ...
    @property
    def violations(self) -> tuple[Violation, ...]: ...
    @property
    def asks(self) -> FrozenMap[str, ReplyBy]: ...
    @property
    def failure(self) -> str: ...
    @property
    def outcome(self) -> Outcome: ...


MessageStep = tuple[
    str,
    frozenset[str],
    int,
    int,
    str,
    ProtocolState | None,
    tuple[Violation, ...],
    Outcome,
    FrozenMap[str, ReplyBy],
]
"""A conversation's fields after a message, in `_messaged`'s order: initiator,
participants, message_count, last_at, protocol, protocol_state, violations, outcome, asks."""


def message_step(conv: ConversationFacts, sent: MessageSent, at: int, position: int) -> MessageStep:
    """What a message in it changes of a conversation, settled: the one rule both the
    persistent fold (`_sent`) and the live one apply."""
    message = sent.message
    sender = agent_of(message.sender)
    to = targets(sent)
    participants = conv.participants
    if len(to) == 1:  # most messages: one to one, between known participants
        if sender not in participants or to[0] not in participants:
            participants = participants | {sender, to[0]}
    else:
        named = {sender, *to}
        if not named <= participants:
            participants = participants | named
    initiator = conv.initiator if conv.message_count else sender
    state, violations, asks = conv.protocol_state, conv.violations, conv.asks
    protocol = message.protocol
    if protocol and (state is not None or protocol in TABLES):
        state, reasons = checked_step(state or begin(protocol, sender), message, sender, to, at)
        for reason in reasons:  # mostly none, at times one
            violations = (*violations, _violation(position, message.id, reason))
    elif asks or message.reply_by is not None:  # outside any table: only its deadlines
        asks, late = _asked_outside_tables(asks, message, sender, at)
        if late:
            violations = (*violations, _violation(position, message.id, late))
    return (
        initiator,
        participants,
        conv.message_count + 1,
        at,
        state.protocol if state is not None else conv.protocol,
        state,
        violations,
        outcome_of(violations, conv.failure, state),
        asks,
    )


def _asked_outside_tables(
    asks: FrozenMap[str, ReplyBy], message: AclMessage, sender: str, at: int
) -> tuple[FrozenMap[str, ReplyBy], str]:
    """A message of no protocol table: a reply (by `in_reply_to`) after the reply-by of the
    message it answers is late; a message with a reply-by is remembered for its replies."""
    late = ""
    asked = asks.get(message.in_reply_to) if message.in_reply_to and asks else None
    if asked is not None and at > asked.at:
        late = late_reason(f"{message.performative} from {sender}", at, asked)
    if message.reply_by is not None:
        asks = asks.set(
            message.reply_with or message.id, ReplyBy(message.reply_by, message.performative)
        )
    return asks, late


def _sent(conv: ConversationState, sent: MessageSent, recorded: Recorded) -> ConversationState:
    """The conversation after a message in it, settled: one copy of the state."""
    return _messaged(conv, *message_step(conv, sent, recorded.at, recorded.position))


# The copies the two most common events make, generated once (caxton.domain.frozen).
_messaged = copier(
    ConversationState,
    "initiator",
    "participants",
    "message_count",
    "last_at",
    "protocol",
    "protocol_state",
    "violations",
    "outcome",
    "asks",
)
_counted = copier(ConversationState, "handled", "last_at")
# ConversationState(id=..., started_at=..., last_at=...) without the frozen __init__.
_begun = copier(ConversationState, "id", "started_at", "last_at")
_UNBEGUN = ConversationState(id="")


def _settle(conv: ConversationState) -> ConversationState:
    settled = outcome_of(conv.violations, conv.failure, conv.protocol_state)
    return conv if settled == conv.outcome else replace(conv, outcome=settled)


def outcome_of(
    violations: tuple[Violation, ...], failure: str, state: ProtocolState | None
) -> Outcome:
    """Violated beats failed, which beats done; a failed conversation never comes back."""
    if violations:
        return "violated"
    if failure:
        return "failed"
    if state is not None:
        return outcome(state)
    return "open"
