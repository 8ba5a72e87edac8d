"""FIPA interaction protocols as transition tables, and the check of one message against them.

A conversation that follows a protocol is a set of exchanges, one per (initiator,
participant) pair. Each table maps (state of the pair, who speaks, performative) to
the next state of that pair; anything the table does not hold is a violation. The
tables are data, after h11's `_state.py`, so each protocol reads on one screen.

Deadlines: a message with a `reply-by` wants the next message of its exchange from the
other side (the answer the table allows: propose, refuse, inform, accept-proposal…) by
then. An answer committed later is a violation, though in order otherwise: its exchange
moves on. The answer settles the deadline, late or not; a later message from the side
that asked, without a reply-by, lifts it (a cancel, say, after which answers may cross).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.frozen import positional
from caxton.domain.frozen_map import FrozenMap

P = Performative
Role = Literal["initiator", "participant"]
INITIATOR: Role = "initiator"
PARTICIPANT: Role = "participant"
Table = Mapping[tuple[str, Role, Performative], str]

START = "start"
DONE = "done"
FAILED = "failed"
REFUSED = "refused"
NOT_UNDERSTOOD = "not-understood"
REJECTED = "rejected"
CANCELLED = "cancelled"

# FIPA SC00026.
FIPA_REQUEST: Table = {
    (START, INITIATOR, P.REQUEST): "requested",
    ("requested", PARTICIPANT, P.REFUSE): REFUSED,
    ("requested", PARTICIPANT, P.NOT_UNDERSTOOD): NOT_UNDERSTOOD,
    ("requested", PARTICIPANT, P.AGREE): "agreed",
    ("requested", PARTICIPANT, P.INFORM): DONE,
    ("requested", PARTICIPANT, P.FAILURE): FAILED,
    ("agreed", PARTICIPANT, P.INFORM): DONE,
    ("agreed", PARTICIPANT, P.FAILURE): FAILED,
}

# FIPA SC00027: inform-t/f and inform-result are all `inform`; inform-if and inform-ref
# are accepted as the explicit spellings of the same answers.
FIPA_QUERY: Table = {
    (START, INITIATOR, P.QUERY_IF): "queried-if",
    ("queried-if", PARTICIPANT, P.REFUSE): REFUSED,
    ("queried-if", PARTICIPANT, P.NOT_UNDERSTOOD): NOT_UNDERSTOOD,
    ("queried-if", PARTICIPANT, P.AGREE): "agreed-if",
    ("queried-if", PARTICIPANT, P.INFORM): DONE,
    ("queried-if", PARTICIPANT, P.INFORM_IF): DONE,
    ("queried-if", PARTICIPANT, P.FAILURE): FAILED,
    ("agreed-if", PARTICIPANT, P.INFORM): DONE,
    ("agreed-if", PARTICIPANT, P.INFORM_IF): DONE,
    ("agreed-if", PARTICIPANT, P.FAILURE): FAILED,
    (START, INITIATOR, P.QUERY_REF): "queried-ref",
    ("queried-ref", PARTICIPANT, P.REFUSE): REFUSED,
    ("queried-ref", PARTICIPANT, P.NOT_UNDERSTOOD): NOT_UNDERSTOOD,
    ("queried-ref", PARTICIPANT, P.AGREE): "agreed-ref",
    ("queried-ref", PARTICIPANT, P.INFORM): DONE,
    ("queried-ref", PARTICIPANT, P.INFORM_REF): DONE,
    ("queried-ref", PARTICIPANT, P.FAILURE): FAILED,
    ("agreed-ref", PARTICIPANT, P.INFORM): DONE,
    ("agreed-ref", PARTICIPANT, P.INFORM_REF): DONE,
    ("agreed-ref", PARTICIPANT, P.FAILURE): FAILED,
}

# FIPA SC00029. Replies to the cfp must come by its reply-by, checked apart from the table.
FIPA_CONTRACT_NET: Table = {
    (START, INITIATOR, P.CFP): "called",
    ("called", PARTICIPANT, P.PROPOSE): "proposed",
    ("called", PARTICIPANT, P.REFUSE): REFUSED,
    ("called", PARTICIPANT, P.NOT_UNDERSTOOD): NOT_UNDERSTOOD,
    ("proposed", INITIATOR, P.ACCEPT_PROPOSAL): "accepted",
    ("proposed", INITIATOR, P.REJECT_PROPOSAL): REJECTED,
    ("accepted", PARTICIPANT, P.INFORM): DONE,
    ("accepted", PARTICIPANT, P.FAILURE): FAILED,
}

TERMINAL = frozenset({DONE, FAILED, REFUSED, NOT_UNDERSTOOD, REJECTED, CANCELLED})
# Answers that may cross the initiator's cancel on the wire; the cancel meta-protocol
# (SC00026 §2) answers the cancel itself with inform or failure.
_CROSSING = (P.AGREE, P.REFUSE, P.NOT_UNDERSTOOD, P.PROPOSE, P.INFORM, P.FAILURE)


def _cancellable(table: Table) -> dict[tuple[str, Role, Performative], str]:
    """The table plus the initiator's `cancel`, allowed at any time after the opening."""
    states = {state for (state, _, _) in table} | set(table.values())
    rows = dict(table)
    for state in states - {START}:
        rows[(state, INITIATOR, P.CANCEL)] = state if state in TERMINAL else CANCELLED
    for performative in _CROSSING:
        rows[(CANCELLED, PARTICIPANT, performative)] = CANCELLED
    return rows


TABLES: Mapping[str, Table] = {
    "fipa-request": _cancellable(FIPA_REQUEST),
    "fipa-query": _cancellable(FIPA_QUERY),
    "fipa-contract-net": _cancellable(FIPA_CONTRACT_NET),
}
OPENINGS: Mapping[str, frozenset[Performative]] = {
    protocol: frozenset(p for (state, role, p) in table if state == START)
    for protocol, table in TABLES.items()
}


@dataclass(frozen=True, slots=True)
class ReplyBy:
    """A message's reply-by (ms since the epoch), and what the message was."""

    at: int
    asked: Performative


Deadlines = FrozenMap[tuple[str, Role], ReplyBy]
"""(participant, the side that asked) -> the reply-by its exchange's answer must meet."""

_NO_PAIRS: FrozenMap[str, str] = FrozenMap()
_NO_DEADLINES: Deadlines = FrozenMap()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolState:
    """Where each exchange of one conversation stands; `pairs` maps participant -> state,
    `deadlines` the reply-bys that wait for an answer."""

    protocol: str
    initiator: str
    pairs: FrozenMap[str, str] = _NO_PAIRS
    deadlines: Deadlines = _NO_DEADLINES


# ProtocolState(protocol, initiator, pairs, deadlines) without the frozen __init__:
# a step makes one per message of a checked conversation.
_state: Callable[[str, str, FrozenMap[str, str], Deadlines], ProtocolState] = positional(
    ProtocolState
)


def agent_of(address: str) -> str:
    """The agent an instance key (`name#replica`) belongs to; other addresses as they are."""
    if "#" not in address:  # most addresses: an agent's name or a client's
        return address
    return address.partition("#")[0]


def begin(protocol: str, initiator: str) -> ProtocolState:
    return _state(protocol, agent_of(initiator), _NO_PAIRS, _NO_DEADLINES)


def step(
    state: ProtocolState, message: AclMessage, targets: tuple[str, ...], *, at: int
) -> tuple[ProtocolState, tuple[str, ...]]:
    """The state after `message`, sent at `at` to the agents `targets`, and its violations.

    A message that breaks the protocol leaves the state of its exchange as it was.
    """
    return checked_step(state, message, agent_of(message.sender), targets, at)


def checked_step(
    state: ProtocolState, message: AclMessage, sender: str, targets: tuple[str, ...], at: int
) -> tuple[ProtocolState, tuple[str, ...]]:
    """`step` for a caller that already knows the agent who sent it (`agent_of`)."""
    table = TABLES.get(state.protocol)
    if table is None:
        return state, ()
    if message.protocol and message.protocol != state.protocol:
        return state, (
            f"{message.performative} uses protocol {message.protocol} "
            f"in a {state.protocol} conversation",
        )
    if sender == state.initiator:
        return _from_initiator(state, table, message, targets, at)
    return _from_participant(state, table, message, sender, at)


def _from_initiator(
    state: ProtocolState,
    table: Table,
    message: AclMessage,
    targets: tuple[str, ...],
    at: int,
) -> tuple[ProtocolState, tuple[str, ...]]:
    performative = message.performative
    pairs, deadlines = state.pairs, state.deadlines
    violations: list[str] = []
    for target in targets:
        if target == state.initiator:
            continue  # a broadcast that reaches its own sender opens no exchange
        current = pairs.get(target, START)
        next_state = table.get((current, INITIATOR, performative))
        if next_state is None:
            violations.append(_initiator_violation(state, performative, target, current))
            continue
        pairs = pairs.set(target, next_state)
        if deadlines or message.reply_by is not None:  # mostly neither
            deadlines, late = _answered(deadlines, (target, PARTICIPANT), at)
            if late is not None:
                violations.append(late_reason(f"{performative} to {target}", at, late))
            deadlines = _asked(deadlines, (target, INITIATOR), message)
    if pairs is state.pairs:  # every exchange refused it: the state stays as it was
        return state, tuple(violations)
    return _state(state.protocol, state.initiator, pairs, deadlines), tuple(violations)


def _from_participant(
    state: ProtocolState, table: Table, message: AclMessage, sender: str, at: int
) -> tuple[ProtocolState, tuple[str, ...]]:
    performative = message.performative
    current = state.pairs.get(sender)
    if current is None:
        return state, (
            f"{performative} from {sender}, which is not a participant of this "
            f"{state.protocol} (opened by {state.initiator})",
        )
    next_state = table.get((current, PARTICIPANT, performative))
    if next_state is None:
        return state, (f"{performative} from {sender} {_describe(state.protocol, current)}",)
    pairs, deadlines = state.pairs.set(sender, next_state), state.deadlines
    violations: tuple[str, ...] = ()
    if deadlines or message.reply_by is not None:  # mostly neither
        deadlines, late = _answered(deadlines, (sender, INITIATOR), at)
        if late is not None:
            violations = (late_reason(f"{performative} from {sender}", at, late),)
        deadlines = _asked(deadlines, (sender, PARTICIPANT), message)
    return _state(state.protocol, state.initiator, pairs, deadlines), violations


def _answered(
    deadlines: Deadlines, key: tuple[str, Role], at: int
) -> tuple[Deadlines, ReplyBy | None]:
    """The deadlines once the exchange `key` waited on is answered at `at`, and the
    deadline the answer missed, if it did."""
    deadline = deadlines.get(key)
    if deadline is None:
        return deadlines, None
    return deadlines.delete(key), deadline if at > deadline.at else None


def _asked(deadlines: Deadlines, key: tuple[str, Role], message: AclMessage) -> Deadlines:
    """The deadlines once `message` asks again in the exchange `key`: its reply-by, or
    none (a message without one lifts the earlier)."""
    if message.reply_by is not None:
        return deadlines.set(key, ReplyBy(message.reply_by, message.performative))
    return deadlines.delete(key)


def late_reason(answer: str, at: int, deadline: ReplyBy) -> str:
    """`propose from bidder-b 12.9 s after the cfp's reply-by 13:15:05.000`."""
    moment = datetime.fromtimestamp(deadline.at / 1000, tz=UTC)
    clock = moment.strftime("%H:%M:%S.") + f"{deadline.at % 1000:03d}"
    return f"{answer} {_lateness(at - deadline.at)} after the {deadline.asked}'s reply-by {clock}"


def _lateness(ms: int) -> str:
    if ms < 1_000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes} min {rest // 1000} s"


def _initiator_violation(
    state: ProtocolState, performative: Performative, target: str, current: str
) -> str:
    awarding = state.protocol == "fipa-contract-net" and performative in (
        P.ACCEPT_PROPOSAL,
        P.REJECT_PROPOSAL,
    )
    if awarding and current == START:
        return f"{performative} to {target}, which was never sent the cfp"
    if current == START:
        openings = " or ".join(sorted(OPENINGS[state.protocol]))
        return (
            f"a {state.protocol} exchange with {target} must open with {openings}, "
            f"not {performative}"
        )
    if awarding and performative == P.ACCEPT_PROPOSAL and current in ("accepted", DONE, FAILED):
        return f"accept-proposal sent twice to {target}"
    if awarding and current != "proposed":
        return f"{performative} to {target}, which did not propose"
    return f"{performative} to {target} {_describe(state.protocol, current)}"


_DESCRIPTIONS = {
    "requested": "while it has not answered the request",
    "queried-if": "while it has not answered the query",
    "queried-ref": "while it has not answered the query",
    "agreed": "after it agreed",
    "agreed-if": "after it agreed",
    "agreed-ref": "after it agreed",
    "called": "while the cfp is unanswered",
    "proposed": "while its proposal awaits accept or reject",
    "accepted": "after its proposal was accepted",
    REJECTED: "after its proposal was rejected",
    REFUSED: "after it refused",
    NOT_UNDERSTOOD: "after it did not understand",
    DONE: "after the exchange is done",
    FAILED: "after the exchange failed",
    CANCELLED: "after the exchange was cancelled",
}


def _describe(protocol: str, state: str) -> str:
    if protocol == "fipa-contract-net" and state == "called":
        return "before its proposal was accepted"
    return f"{_DESCRIPTIONS.get(state, f'in state {state}')} ({protocol})"


Outcome = Literal["open", "done", "failed"]


def outcome(state: ProtocolState) -> Outcome:
    """Failed if an exchange failed; done once every exchange reached a terminal state."""
    states = set(state.pairs.values())
    if FAILED in states:
        return "failed"
    if states and states <= TERMINAL:
        return "done"
    return "open"


def phase(state: ProtocolState) -> str:
    """A human name for where the conversation stands: `cfp sent`, `proposals in`, …"""
    states = set(state.pairs.values())
    if not states:
        return "not started"
    if states <= TERMINAL:
        if states == {CANCELLED}:
            return "cancelled"
        return "failed" if FAILED in states else "done"
    if state.protocol == "fipa-contract-net":
        if "called" in states:
            return "cfp sent"
        if "accepted" in states or DONE in states:
            return "awarded"
        return "proposals in"
    if any(s.startswith("agreed") for s in states):
        return "agreed"
    return "requested" if state.protocol == "fipa-request" else "queried"
