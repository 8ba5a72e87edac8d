"""`caxton trace` lines at the moment each step happened: a handling's line at its dequeue
with its queue wait, duration and tool waits, its tool lines after it; a log written
before those times were recorded reads as it always did."""

from __future__ import annotations

from caxton.domain.events import (
    Event,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolCalled,
    ToolFailed,
)
from caxton.replay.trace import format_line, trace_lines
from tests.samples import message

SENT_AT = 1_700_000_000_000  # ms
MS = 1000  # µs


def history(*, timed: bool) -> list[Recorded]:
    """A request committed at SENT_AT, taken 10 s later, its tool failing after 5 s, all
    committed together 15.4 s after the send."""
    m = message()
    at = SENT_AT * MS

    def ts(offset_ms: int) -> int:
        return at + offset_ms * MS if timed else 0

    committed = SENT_AT + 15_400
    events: list[tuple[int, Event]] = [
        (SENT_AT, MessageSent(message=m, deliveries=("echo#0",))),
        (
            committed,
            ToolCalled(
                call_id="t1",
                server="time",
                tool="slow",
                arguments="{}",
                agent="echo",
                conversation_id="c1",
                message_id=m.id,
                at_us=ts(10_001),
            ),
        ),
        (
            committed,
            ToolFailed(
                call_id="t1",
                server="time",
                tool="slow",
                kind="timeout",
                reason="timeout: time.slow did not answer within 5s",
                duration_us=5_000 * MS,
                agent="echo",
                conversation_id="c1",
                at_us=ts(15_001),
            ),
        ),
        (
            committed,
            MessageHandled(
                message_id=m.id,
                conversation_id="c1",
                agent="echo",
                replica=0,
                duration_us=5_300 * MS,
                error="no answer",
                dequeued_us=ts(10_000),
                started_us=ts(10_000),
            ),
        ),
    ]
    return [
        Recorded(position=i, stream="conversation:c1", version=i, at=when, event=event)
        for i, (when, event) in enumerate(events, start=1)
    ]


def test_a_timed_handling_shows_its_queue_wait_duration_and_tool_wait_in_time_order() -> None:
    lines = trace_lines(history(timed=True))

    assert [(line.status, line.at - SENT_AT) for line in lines] == [
        ("sent", 0),
        ("failed", 10_000),
        ("tool-called", 10_001),
        ("tool-failed", 15_001),
    ]
    assert format_line(lines[1]) == (
        '[22:13:30.000] agent="echo" message="request" status="failed" waited="10000ms" '
        'took="5300ms" tools="5000ms" error="no answer"'
    )
    assert (lines[1].waited_us, lines[1].took_us, lines[1].tools_us) == (
        10_000 * MS,
        5_300 * MS,
        5_000 * MS,
    )
    assert lines[1].to_json()["waited_us"] == 10_000 * MS


def test_a_log_without_stage_times_reads_as_it_always_did() -> None:
    lines = trace_lines(history(timed=False))

    assert [(line.status, line.at - SENT_AT) for line in lines] == [
        ("sent", 0),
        ("tool-called", 15_400),
        ("tool-failed", 15_400),
        ("failed", 15_400),
    ]
    assert format_line(lines[3]) == (
        '[22:13:35.400] agent="echo" message="request" status="failed" error="no answer"'
    )
    assert "waited_us" not in lines[3].to_json()
