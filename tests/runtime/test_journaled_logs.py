"""An agent's log lines are journaled with its handling, bounded, and skipped on replay."""

from __future__ import annotations

from caxton.domain.events import HostCall
from caxton.domain.journal import MAX_LOG_BYTES, MAX_LOG_LINE, MAX_LOG_LINES, answers
from caxton.replay.calls import journal_lines
from caxton.replay.reexec import Journal
from caxton.shell.runtime.context import CallContext
from tests.support import SteppedClock


def context() -> CallContext:
    return CallContext(agent="teller", cause=None, clock=SteppedClock(), max_content_bytes=1024)


def test_an_agent_that_does_not_log_journals_answers_only_and_makes_no_log_buffer() -> None:
    call = context()
    call.now()
    call.random()
    assert [c.kind for c in call.journal] == ["now", "random"]
    assert call.journaled_logs is None


def test_log_lines_are_journaled_in_order_among_the_answers() -> None:
    call = context()
    call.log("info", "asking the time")
    call.now()
    call.log("warn", "late")
    assert call.journal == [
        HostCall(kind="log", value="info asking the time"),
        HostCall(kind="now", value="1700000000000"),
        HostCall(kind="log", value="warn late"),
    ]
    assert call.logs[0][1] == "asking the time"  # still written to the server's log


def test_lines_past_the_count_are_counted_in_one_entry_where_the_first_was_dropped() -> None:
    call = context()
    for i in range(MAX_LOG_LINES + 1):
        call.log("info", f"line {i}")
    call.now()
    for _ in range(5):
        call.log("debug", "more")
    kinds = [c.kind for c in call.journal]
    assert kinds == ["log"] * MAX_LOG_LINES + ["log-dropped", "now"]
    assert call.journal[MAX_LOG_LINES] == HostCall(kind="log-dropped", value="6")
    assert len(call.logs) == MAX_LOG_LINES + 6  # the server's log has every line


def test_lines_past_the_bytes_are_dropped_and_a_long_line_is_cut() -> None:
    call = context()
    call.log("info", "é" * (MAX_LOG_LINE + 10))
    (cut,) = call.journal
    assert cut.value == "info " + "é" * (MAX_LOG_LINE - 1) + "…"
    for _ in range(8):  # 2,053 bytes each as journaled: 7 fit in 16 KiB
        call.log("info", "é" * MAX_LOG_LINE)
    entries = [c for c in call.journal if c.kind == "log"]
    assert len(entries) == MAX_LOG_BYTES // len(cut.value.encode()) == 7
    assert call.journal[-1] == HostCall(kind="log-dropped", value="2")
    assert journal_lines(call.journal[-1:]) == [
        "… 2 more log lines dropped (a handling journals at most 64 lines, 16 KiB)"
    ]


def test_a_replaying_host_skips_log_entries_and_feeds_the_answers_in_order() -> None:
    journal = [
        HostCall(kind="log", value="info asking the time"),
        HostCall(kind="now", value="5"),
        HostCall(kind="log-dropped", value="3"),
        HostCall(kind="random", value="7"),
        HostCall(kind="log", value="info done"),
    ]
    assert answers(journal) == (journal[1], journal[3])
    replay = Journal(journal)
    assert replay.take("now") == journal[1]
    assert replay.take("random") == journal[3]
    assert replay.unused() == []
    assert replay.surprises == []
