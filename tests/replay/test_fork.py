"""Forking a recorded conversation: the edit, what is run again, what stays recorded."""

from __future__ import annotations

import json

import pytest

from caxton.domain.events import MessageDeadLettered, MessageSent
from caxton.replay.edits import BadEdit, edited, parse_edit
from caxton.replay.fork import Fork, counterpart, fork, render
from caxton.replay.recording import record
from tests.replay.relay_recordings import ASKED, RELAYED, Agents, relayed


def forked(step: int, *edits: str, agents: Agents | None = None) -> Fork:
    events = relayed()
    return fork(
        record(RELAYED, events), events, step, [parse_edit(e) for e in edits], agents or Agents()
    )


def contents(result: Fork) -> list[str]:
    return [
        json.loads(r.event.message.content)["price"]
        for r in result.recording.events
        if isinstance(r.event, MessageSent)
    ]


def test_the_recording_has_seven_steps_as_recorded() -> None:
    events = relayed()
    assert len(record(RELAYED, events).events) == 7


def test_an_edit_reaches_the_receiver_and_flows_downstream() -> None:
    agents = Agents()
    result = forked(3, 'content={"price": 5}', agents=agents)
    assert result.marks == (
        "recorded",
        "recorded",
        "edited",
        "re-executed",
        "changed",
        "re-executed",
        "changed",
    )
    assert contents(result) == [7, 5, 5, 5]
    # the relay caught up on its recorded input before the fork, then handled the new answer
    assert agents.started == [("quoter", 0), ("relay", 0)]
    assert [(a, m.performative.value) for a, m in agents.handled] == [
        ("quoter", "request"),
        ("relay", "request"),
        ("relay", "inform"),
    ]
    last = result.recording.events[-1].event
    assert isinstance(last, MessageSent) and last.message.receivers == ("client:c",)


def test_an_answer_that_comes_out_the_same_leaves_the_rest_as_recorded() -> None:
    result = forked(3, "ontology=pricing")
    assert result.marks == (
        "recorded",
        "recorded",
        "edited",
        "re-executed",
        "same",
        "recorded",
        "recorded",
    )


def test_a_receiver_that_does_not_exist_dead_letters_and_what_followed_is_gone() -> None:
    result = forked(3, "receivers=nobody")
    assert result.marks == ("recorded", "recorded", "edited", "new")
    dead = result.recording.events[-1].event
    assert isinstance(dead, MessageDeadLettered) and dead.reason == "no agent named nobody"


def test_a_new_receiver_handles_the_message_right_after_it_is_sent() -> None:
    agents = Agents()
    result = forked(7, "receivers=client:c,quoter", agents=agents)
    assert result.marks[6] == "edited"
    # the quoter answers the relay, which passes it on to the client it remembers
    assert result.marks[7:] == ("new",) * 4  # handled, informs, handled, informs
    assert [(a, m.performative.value) for a, m in agents.handled] == [
        ("quoter", "request"),  # each catches up on its recorded inputs first
        ("quoter", "inform"),
        ("relay", "request"),
        ("relay", "inform"),
        ("relay", "inform"),  # then handles the quoter's new answer
    ]
    last = result.recording.events[-1].event
    assert isinstance(last, MessageSent) and last.message.receivers == ("client:c",)


def test_the_text_shows_each_step_with_its_sign() -> None:
    result = forked(1, 'content={"price": 3}')
    text = render(result, [("content", '{"price": 3}')])
    assert text.startswith(f"Fork of {RELAYED} at step 1")
    lines = [line for line in text.splitlines() if "  [" in line]
    assert [line[0] for line in lines] == ["✎", "↻", "≠", "↻", "≠", "↻", "≠"]
    assert lines[-1].endswith('{"price":3}')


def test_each_step_has_a_counterpart_on_the_other_side_when_it_is_about_the_same() -> None:
    result = forked(3, "receivers=nobody")
    assert counterpart(2, result.original, result.recording, 3) == 2
    assert counterpart(3, result.original, result.recording, 3) == 3  # the same message id
    assert counterpart(5, result.original, result.recording, 3) is None


def test_bad_edits_say_what_is_wrong() -> None:
    for text, words in [
        ("colour=red", "no field 'colour'"),
        ("content", "is not FIELD=VALUE"),
    ]:
        with pytest.raises(BadEdit, match=words):
            parse_edit(text)
    for edit, words in [
        (("content", "{nope"), "not valid JSON"),
        (("performative", "haggle"), "not a performative"),
        (("receivers", "bad name!"), "receivers"),
        (("reply_by", "soon"), "not milliseconds"),
    ]:
        with pytest.raises(BadEdit, match=words):
            edited(ASKED, [edit])
    with pytest.raises(BadEdit, match="step 2 is a MessageHandled"):
        forked(2, "content={}")
    with pytest.raises(BadEdit, match="steps 1 to 7"):
        forked(8, "content={}")
    with pytest.raises(BadEdit, match="leaves the message at step 1"):
        forked(1, 'content={"price": 7}')
