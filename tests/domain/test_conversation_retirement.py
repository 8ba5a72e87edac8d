"""Conversations retire from the live world once settled and quiet; the fold decides when."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain import (
    Conversations,
    MessageHandled,
    MessageSent,
    Recorded,
    evolve_conversations,
)
from caxton.domain.conversations import RETIRE_AFTER_MS, RETIRE_OPEN_AFTER_MS
from caxton.domain.world import fold
from tests.domain.domain_histories import Log, P, histories
from tests.domain.test_conversations import folded

WINDOW = RETIRE_AFTER_MS


def request_answered(log: Log, conversation: str, at: int) -> None:
    log.send(P.REQUEST, "alice", "bob", conversation=conversation, protocol="fipa-request", at=at)
    log.send(P.INFORM, "bob", "alice", conversation=conversation, protocol="fipa-request", at=at)


def test_a_settled_conversation_stays_a_window_then_retires() -> None:
    log = Log()
    request_answered(log, "old", at=0)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=WINDOW - 1)
    assert folded(log)["old"].outcome == "done"

    log.send(P.INFORM, "carol", "dave", conversation="tick", at=2 * WINDOW)
    assert "old" in folded(log)  # in the older generation now
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=3 * WINDOW)
    assert "old" not in folded(log)
    assert "tick" in folded(log)  # touched in this generation


def test_a_conversation_a_protocol_still_checks_stays_and_its_late_answer_is_checked() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", conversation="slow", protocol="fipa-request", at=0)
    log.send(P.AGREE, "bob", "alice", conversation="slow", protocol="fipa-request", at=10)
    for k in range(1, 6):  # five windows of other traffic
        request_answered(log, f"other{k}", at=k * WINDOW)

    late = 5 * WINDOW + 10
    log.send(P.INFORM, "bob", "alice", conversation="slow", protocol="fipa-request", at=late)
    slow = folded(log)["slow"]
    assert (slow.outcome, slow.violations, slow.message_count) == ("done", (), 3)
    assert sorted(c for c in folded(log) if c.startswith("other")) == ["other4", "other5"]


def test_an_open_conversation_quiet_for_an_hour_retires_all_the_same() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", conversation="abandoned", protocol="fipa-request", at=0)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=RETIRE_OPEN_AFTER_MS - WINDOW)
    assert "abandoned" in folded(log)

    log.send(P.INFORM, "carol", "dave", conversation="tick", at=RETIRE_OPEN_AFTER_MS + WINDOW)
    assert "abandoned" not in folded(log)


def test_a_conversation_outside_any_protocol_retires_once_quiet() -> None:
    log = Log()
    log.send(P.INFORM, "alice", "bob", conversation="chat", at=0)
    log.add(MessageHandled(message_id="m1", conversation_id="chat", agent="bob", replica=0), at=5)
    assert folded(log)["chat"].outcome == "open"

    log.send(P.INFORM, "carol", "dave", conversation="tick", at=2 * WINDOW)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=3 * WINDOW)
    assert "chat" not in folded(log)


def test_a_message_in_a_retired_conversation_starts_it_afresh() -> None:
    log = Log()
    request_answered(log, "c1", at=0)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=2 * WINDOW)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=3 * WINDOW)

    log.send(P.INFORM, "bob", "alice", conversation="c1", protocol="fipa-request", at=3 * WINDOW)
    again = folded(log)["c1"]
    assert (again.message_count, again.started_at) == (1, 3 * WINDOW)


def test_retired_or_not_the_world_compares_by_content() -> None:
    log = Log()
    request_answered(log, "a", at=10)
    request_answered(log, "b", at=WINDOW + 5)  # a new generation: "a" is in the older one
    moved = folded(log)
    assert "a" in moved.older and "b" in moved.recent
    rebuilt = folded(log)
    assert moved == rebuilt and hash(moved) == hash(rebuilt)
    assert moved == dict(moved.items())
    assert sorted(moved) == ["a", "b"] and len(moved) == 2


@settings(max_examples=80, deadline=None)
@given(histories(), st.integers(1, 60))
def test_what_the_world_holds_of_a_conversation_is_the_fold_of_its_own_events(
    history: list[Recorded], stretch: int
) -> None:
    """Whatever retired, a conversation still held is exactly as if folded alone from
    where it (re)started: retirement drops conversations, it never alters one. Stretching
    the history's clock (steps of up to 3 s become up to 3 min) makes retirements common."""
    stretched = [replace(r, at=r.at * stretch) for r in history]
    world = fold(stretched)
    for cid, held in world.conversations.items():
        own = [r for r in stretched if conversation_of(r) == cid and r.at >= held.started_at]
        # alone and without retiring anything: a generation changes only a window after
        # `since`, and the log ends before that
        alone = Conversations(since=stretched[-1].at)
        for recorded in own:
            alone = evolve_conversations(alone, recorded)
        assert alone[cid] == held


def conversation_of(recorded: Recorded) -> str:
    event = recorded.event
    if isinstance(event, MessageSent):
        return event.message.conversation_id
    return str(getattr(event, "conversation_id", ""))


def test_a_late_handling_of_a_retired_conversation_leaves_the_world_alone() -> None:
    log = Log()
    request_answered(log, "c1", at=0)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=2 * WINDOW)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=3 * WINDOW)
    log.add(MessageHandled(message_id="m1", conversation_id="c1", agent="bob", replica=0))

    assert "c1" not in folded(log)  # no ghost with no messages: the log has the real one


def test_a_clock_set_back_counts_the_window_again_from_there() -> None:
    log = Log()
    request_answered(log, "old", at=10 * WINDOW)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=0)  # a day back, say
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=WINDOW)
    log.send(P.INFORM, "carol", "dave", conversation="tick", at=2 * WINDOW)

    assert folded(log).since == 2 * WINDOW
    assert "old" not in folded(log)  # it retired as if the clock had been right
