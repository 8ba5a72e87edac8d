"""What `/` searches is what the screens show; long values wrap instead of being cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from caxton.domain.events import MessageSent
from caxton.replay.cursor import Cursor
from caxton.replay.recording import record
from caxton.replay.views import detail, lane_width, lanes, search, sequence, shown, wrapped
from tests.replay.compact_recordings import compact_contract_net
from tests.replay.recordings import CONVERSATION

PRICE_15 = 9
"""The step at which bidder-c proposes `{"price":15}`."""


def cursor() -> Cursor:
    return Cursor.open(record(CONVERSATION, compact_contract_net()))


def test_the_content_is_recorded_compact_and_shown_pretty() -> None:
    at = cursor().seek(PRICE_15)
    assert isinstance(at.recorded.event, MessageSent)  # type: ignore[union-attr]
    assert at.recorded.event.message.content == '{"price":15}'  # type: ignore[union-attr]
    assert '  "price": 15' in detail(at)


def test_a_search_for_the_text_as_shown_finds_compact_content() -> None:
    found = search(cursor(), '"price": 15')
    assert found is not None and found.step == PRICE_15
    assert cursor().search('"price": 15') is None  # the recorded text alone misses it


def test_a_search_for_the_compact_or_the_one_line_form_finds_it_too() -> None:
    for text in ('"price":15', '{"price":15}', '{"price": 15}', '"PRICE": 15'):
        found = search(cursor(), text)
        assert found is not None and found.step == PRICE_15, text


def test_a_search_finds_what_a_row_shows_and_wraps_around() -> None:
    at = cursor()
    found = search(at, "manager → bidder-a, bidder-b, bidder-c")
    assert found is not None and found.step == 3
    assert search(at, "16:00:00.013") == at.seek(14)
    assert search(at.end(), "widget") == at.seek(1)
    assert search(at, "no such text") is None


def test_a_search_backwards_finds_the_previous_step_that_shows_the_text() -> None:
    found = search(cursor().seek(PRICE_15), '"price": 9', backwards=True)
    assert found is not None and found.step == 7  # bidder-b's proposal


def test_every_step_shows_its_row_and_its_message() -> None:
    at = cursor()
    for step in range(1, at.last + 1):
        assert detail(at.seek(step)) in shown(at.timeline, step)


def test_a_list_of_receivers_wraps_after_its_commas() -> None:
    arrow = "manager → bidder-a, bidder-b, bidder-c"
    assert wrapped(arrow, 40) == (arrow,)
    assert wrapped(arrow, 26) == ("manager → bidder-a,", "bidder-b, bidder-c")
    assert wrapped(arrow, 10) == ("manager →", "bidder-a,", "bidder-b,", "bidder-c")
    assert wrapped("a-very-long-name", 5) == ("a-ver", "y-lon", "g-nam", "e")
    assert wrapped("", 5) == ("",)


@given(st.text(alphabet="ab ,→-", max_size=60), st.integers(min_value=1, max_value=30))
def test_wrapping_keeps_every_character_but_spaces_and_fits_the_width(
    text: str, width: int
) -> None:
    lines = wrapped(text, width)
    assert all(len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_a_lane_is_never_too_narrow_for_its_name() -> None:
    at = cursor()
    names = lanes(at.timeline)
    assert lane_width(names, 120) == 23  # the lanes share a wide pane
    assert lane_width(names, 30) == len("client:cli") + 2  # a narrow one scrolls
    header = sequence(at, width=lane_width(names, 30))[0][1]
    assert header.split() == names
    assert lane_width(["a-very-long-agent-name-for-a-lane"], 200) == 35
    assert lane_width([], 48) == 24
