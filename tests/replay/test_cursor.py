"""The cursor: the state at step n is the fold of the first n events, whatever the moves."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain.events import MessageHandled, MessageSent, Recorded
from caxton.domain.world import fold
from caxton.replay.cursor import Breakpoints, Cursor
from caxton.replay.recording import Recording, belongs, extend, record
from tests.domain.domain_histories import histories
from tests.replay.recordings import CONVERSATION, contract_net


def conversation_ids(history: list[Recorded]) -> list[str]:
    found = {r.event.message.conversation_id for r in history if isinstance(r.event, MessageSent)}
    return sorted(c for c in found if c)


@st.composite
def recordings(draw: st.DrawFn) -> Recording:
    history = draw(histories())
    ids = conversation_ids(history)
    cid = draw(st.sampled_from(ids)) if ids else "none"
    return record(cid, history)


@settings(max_examples=150, deadline=None)
@given(recordings(), st.lists(st.integers(-3, 60), max_size=12))
def test_the_state_at_step_n_is_the_fold_of_the_first_n_events(
    recording: Recording, seeks: list[int]
) -> None:
    cursor = Cursor.open(recording)
    for target in seeks:
        cursor = cursor.seek(target)
        assert 0 <= cursor.step <= len(recording.events)
        assert cursor.state == fold(recording.events[: cursor.step], recording.prelude)


@settings(max_examples=150, deadline=None)
@given(recordings(), st.integers(0, 60))
def test_stepping_forward_then_back_returns_to_the_same_state(
    recording: Recording, start: int
) -> None:
    cursor = Cursor.open(recording).seek(start)
    if cursor.step < cursor.last:
        again = cursor.forward().back()
        assert again.step == cursor.step
        assert again.state == cursor.state


@settings(max_examples=150, deadline=None)
@given(recordings(), st.data())
def test_play_stops_exactly_at_the_breakpoints(recording: Recording, data: st.DataObject) -> None:
    last = len(recording.events)
    steps = data.draw(st.frozensets(st.integers(1, max(last, 1)), max_size=5))
    cursor = Cursor.open(recording, step=0)
    for step in steps:
        cursor = cursor.toggle_breakpoint(step)
    stops = []
    while cursor.step < last:
        cursor = cursor.run()
        stops.append(cursor.step)
    expected = sorted(s for s in steps if s <= last)
    assert [s for s in stops if s != last] == [s for s in expected if s != last]
    assert not last or stops[-1] == last


@settings(max_examples=100, deadline=None)
@given(histories())
def test_a_recording_holds_every_event_of_its_conversation(history: list[Recorded]) -> None:
    for cid in conversation_ids(history):
        recording = record(cid, history)
        own = [r for r in history if belongs(r, cid)]
        assert [r for r in recording.events if belongs(r, cid)] == own
        positions = [r.position for r in recording.events]
        assert positions == sorted(positions)


def test_a_live_recording_grows_by_extension_as_it_would_by_recording_again() -> None:
    history = contract_net()
    grown = record(CONVERSATION, history[:14])
    for recorded in history[14:]:
        grown = extend(grown, recorded)
    assert grown.events == record(CONVERSATION, history).events
    assert extend(grown, history[-1]) is grown  # already held


def test_cause_jumps_from_a_handling_to_its_send_and_from_a_send_to_its_cause() -> None:
    cursor = Cursor.open(record(CONVERSATION, contract_net()))
    handled = cursor.find(
        lambda r: isinstance(r.event, MessageHandled) and r.event.agent == "bidder-b"
    )
    assert handled is not None
    send = handled.cause()
    assert send is not None and send.recorded is not None
    assert isinstance(send.recorded.event, MessageSent)
    assert send.recorded.event.message.performative.value == "cfp"
    request = send.cause()
    assert request is not None and request.recorded is not None
    assert isinstance(request.recorded.event, MessageSent)
    assert request.recorded.event.message.sender == "client:cli"
    assert request.cause() is None  # the client's request has no cause in the log


def test_search_finds_content_and_wraps_around() -> None:
    cursor = Cursor.open(record(CONVERSATION, contract_net()))
    found = cursor.search('"price": 9')
    assert found is not None and isinstance(found.recorded.event, MessageSent)  # type: ignore[union-attr]
    assert found.recorded.event.message.sender == "bidder-b"  # type: ignore[union-attr]
    assert found.end().search("widget") == cursor.seek(1)
    assert cursor.search("no such text") is None


def test_break_on_a_performative_or_an_agent() -> None:
    cursor = Cursor.open(record(CONVERSATION, contract_net()), step=0).break_on(
        performative="accept-proposal"
    )
    stopped = cursor.run()
    assert stopped.recorded is not None and isinstance(stopped.recorded.event, MessageSent)
    assert stopped.recorded.event.message.performative.value == "accept-proposal"
    by_agent = Cursor.open(record(CONVERSATION, contract_net()), step=0).break_on(agent="bidder-c")
    first = by_agent.run()
    assert first.step == 3  # the cfp is delivered to bidder-c
    assert Breakpoints() == Breakpoints() and not Breakpoints()
