"""The conversations fold done in place, for one owner that folds many events between reads.

`LiveConversations` applies the same rules as `caxton.domain.conversations` (the same
message step, the same two generations and retirement), but to mutable records in
plain dicts: a message costs a few attribute writes instead of a copy of the
conversation, a path copy of a `FrozenMap` and a new `Conversations`. `frozen()` makes
the persistent `Conversations` a reader gets, equal to what `conversations.evolve` over
the same events makes, generation by generation. It copies only what changed since
the last time (kept up to date at each change of generation too), so reading after
every batch costs a copy per conversation the batch touched, not per event.
"""

from __future__ import annotations

from collections.abc import Callable

from caxton.domain.conversations import (
    NO_ASKS,
    RETIRE_AFTER_MS,
    RETIRE_OPEN_AFTER_MS,
    Conversations,
    ConversationState,
    Outcome,
    Violation,
    checked_by_protocol,
    message_step,
    outcome_of,
)
from caxton.domain.events import AgentTrapped, MessageDeadLettered, MessageHandled, MessageSent
from caxton.domain.frozen import positional
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.ids import instance_key
from caxton.domain.protocols import ProtocolState, ReplyBy

_FIELDS = (
    "id",
    "protocol",
    "initiator",
    "participants",
    "message_count",
    "handled",
    "started_at",
    "last_at",
    "outcome",
    "violations",
    "dead_letters",
    "traps",
    "failure",
    "protocol_state",
    "asks",
)


class _Record:
    """A `ConversationState` that changes in place; only its `LiveConversations` holds it."""

    __slots__ = _FIELDS

    id: str
    protocol: str
    initiator: str
    participants: frozenset[str]
    message_count: int
    handled: int
    started_at: int
    last_at: int
    outcome: Outcome
    violations: tuple[Violation, ...]
    dead_letters: int
    traps: int
    failure: str
    protocol_state: ProtocolState | None
    asks: FrozenMap[str, ReplyBy]


def _begun(cid: str, at: int) -> _Record:
    """A conversation's record before its first message: `ConversationState`'s defaults."""
    record = _Record()
    record.id, record.protocol, record.initiator = cid, "", ""
    record.participants, record.message_count, record.handled = frozenset(), 0, 0
    record.started_at, record.last_at, record.outcome = at, at, "open"
    record.violations, record.dead_letters, record.traps = (), 0, 0
    record.failure, record.protocol_state, record.asks = "", None, NO_ASKS
    return record


def _thawed(state: ConversationState) -> _Record:
    record = _Record()
    for name in _FIELDS:
        setattr(record, name, getattr(state, name))
    return record


# ConversationState from every field's value, in order, without the frozen __init__.
_state: Callable[..., ConversationState] = positional(ConversationState)


def _frozen(r: _Record) -> ConversationState:
    return _state(
        r.id,
        r.protocol,
        r.initiator,
        r.participants,
        r.message_count,
        r.handled,
        r.started_at,
        r.last_at,
        r.outcome,
        r.violations,
        r.dead_letters,
        r.traps,
        r.failure,
        r.protocol_state,
        r.asks,
    )


_NONE: FrozenMap[str, ConversationState] = FrozenMap()


class LiveConversations:
    """Conversations folded in place, in the two generations of `Conversations`.

    `recent` and `older` hold records (or, until first changed, the states they started
    from); `checked` the ids a protocol still checks. Beside them, the persistent maps
    of the last `frozen()`, behind by the ids in `dirty` (all in `recent`) and `left`
    (moved out of `older`).
    """

    __slots__ = (
        "_frozen_checked",
        "_frozen_older",
        "_frozen_recent",
        "_snapshot",
        "checked",
        "dirty",
        "left",
        "older",
        "recent",
        "since",
    )

    def __init__(self, conversations: Conversations) -> None:
        self.recent: dict[str, _Record | ConversationState] = dict(conversations.recent.items())
        self.older: dict[str, _Record | ConversationState] = dict(conversations.older.items())
        self.since = conversations.since
        self.checked: set[str] = set(conversations.checked)
        self.dirty: set[str] = set()
        self.left: set[str] = set()
        self._frozen_recent = conversations.recent
        self._frozen_older = conversations.older
        self._frozen_checked = conversations.checked
        self._snapshot: Conversations | None = conversations

    def sent(self, event: MessageSent, at: int, position: int) -> None:
        """`conversations.sent`, in place."""
        cid = event.message.conversation_id
        if not cid:
            return
        if at < self.since or at - self.since >= RETIRE_AFTER_MS:
            self._age(at)
        self._snapshot = None
        found = self.recent.get(cid)
        if found is None:
            found = self.older.pop(cid, None)
            if found is None:
                record = self.recent[cid] = _begun(cid, at)
            else:
                self.left.add(cid)
                record = self.recent[cid] = found if isinstance(found, _Record) else _thawed(found)
        elif isinstance(found, _Record):
            record = found
        else:
            record = self.recent[cid] = _thawed(found)
        (
            record.initiator,
            record.participants,
            record.message_count,
            record.last_at,
            record.protocol,
            record.protocol_state,
            record.violations,
            record.outcome,
            record.asks,
        ) = message_step(record, event, at, position)
        self.dirty.add(cid)
        if record.outcome == "open" and record.protocol_state is not None:
            self.checked.add(cid)
        else:
            self.checked.discard(cid)

    def handled(self, event: MessageHandled, at: int) -> None:
        """`conversations.handled`, in place: a late handling of a retired one changes nothing."""
        cid = event.conversation_id
        if not cid:
            return
        if at < self.since or at - self.since >= RETIRE_AFTER_MS:
            self._age(at)
        record = self.recent.get(cid)
        if type(record) is not _Record:
            record = self._touched(cid)
            if record is None:
                return
        self._snapshot = None
        record.handled += 1
        record.last_at = at
        self.dirty.add(cid)

    def failed(self, event: MessageDeadLettered | AgentTrapped, at: int) -> None:
        """A dead letter or a trap in a conversation: counted, and the first failure kept."""
        cid = event.conversation_id
        if not cid:
            return
        if at < self.since or at - self.since >= RETIRE_AFTER_MS:
            self._age(at)
        record = self._touched(cid)
        if record is None:  # retired before this late fact: the log keeps it
            return
        self._snapshot = None
        record.last_at = at
        if isinstance(event, MessageDeadLettered):
            record.dead_letters += 1
            failure = f"dead letter to {event.receiver}: {event.reason}"
        else:
            record.traps += 1
            where = instance_key(event.agent, event.replica)
            failure = f"{where} trapped: {event.kind}: {event.reason}"
        record.failure = record.failure or failure
        record.outcome = outcome_of(record.violations, record.failure, record.protocol_state)
        self.dirty.add(cid)
        if not checked_by_protocol(record):
            self.checked.discard(cid)

    def frozen(self) -> Conversations:
        """The persistent `Conversations` equal to this, sharing what did not change."""
        if self._snapshot is None:
            self._catch_up()
            self._snapshot = Conversations(
                self._frozen_recent, self._frozen_older, self.since, self._frozen_checked
            )
        return self._snapshot

    def _touched(self, cid: str) -> _Record | None:
        """The record of `cid`, moved to the recent generation and thawed; None if retired."""
        found = self.recent.get(cid)
        if found is None:
            found = self.older.pop(cid, None)
            if found is None:
                return None
            self.left.add(cid)
        record = found if isinstance(found, _Record) else _thawed(found)
        self.recent[cid] = record
        return record

    def _catch_up(self) -> None:
        """The persistent maps brought up to date with the changes since the last time."""
        older, checked = self._frozen_older, self._frozen_checked
        for cid in self.left:
            older = older.delete(cid)
        changed: dict[str, ConversationState] = {}
        now_checked: dict[str, bool] = {}
        for cid in self.dirty:
            found = self.recent[cid]
            changed[cid] = _frozen(found) if isinstance(found, _Record) else found
            if cid in self.checked:
                if cid not in checked:
                    now_checked[cid] = True
            elif cid in checked:
                checked = checked.delete(cid)
        self.left.clear()
        self.dirty.clear()
        self._frozen_recent = self._frozen_recent.updated(changed)
        self._frozen_older, self._frozen_checked = older, checked.updated(now_checked)

    def _age(self, at: int) -> None:
        """`Conversations.aged`: a new generation once a window has passed since the last."""
        self._snapshot = None
        if at < self.since:  # the clock was set back: the window counts from here
            self.since = at
            return
        self._catch_up()
        kept, frozen_kept = self.recent, self._frozen_recent
        frozen_checked = self._frozen_checked
        for cid in list(self.checked):
            found = self.older.get(cid)
            if found is None:
                continue  # changed in this generation: it is in `recent`
            if at - found.last_at < RETIRE_OPEN_AFTER_MS:
                kept[cid] = found
                frozen_kept = frozen_kept.set(cid, self._frozen_older[cid])
            else:
                self.checked.discard(cid)  # quiet for an hour: it retires all the same
                frozen_checked = frozen_checked.delete(cid)
        self.recent, self.older, self.since = {}, kept, at
        self._frozen_recent, self._frozen_older = _NONE, frozen_kept
        self._frozen_checked = frozen_checked
