"""Progress of long steps in a log: each stage is said to still run every heartbeat of its
own (a stage started a moment before the shared tick was reported at '0 s so far')."""

from __future__ import annotations

import io
import time

from rich.console import Console

from caxton.shell.cli.progress import Stage, Tally


def stage_started_ago(seconds: float) -> Stage:
    return Stage("manager", "compiling", started=time.monotonic() - seconds)


def test_a_stage_is_reported_after_each_heartbeat_of_its_own() -> None:
    assert not stage_started_ago(29).beat_due(30)
    stage = stage_started_ago(31)
    assert stage.beat_due(30)
    assert not stage.beat_due(30)  # said once for its first 30 s
    stage.started -= 30
    assert stage.beat_due(30)


def test_a_stage_running_for_several_heartbeats_unseen_is_said_once() -> None:
    stage = stage_started_ago(95)
    assert stage.beat_due(30)
    assert not stage.beat_due(30)


def test_a_tally_on_a_terminal_is_a_bar_with_the_count_done() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with Tally(console, "re-executing bidder-b", 3, unit="conversations") as tally:
        tally.advance()
        tally.advance()
    assert tally.done == 2
    assert "re-executing bidder-b" in screen.getvalue()
    assert "2/3" in screen.getvalue() and "━" in screen.getvalue()


def test_a_tally_in_a_log_says_when_it_starts_and_ends() -> None:
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=100)
    with Tally(console, "re-executing bidder-b", 2, unit="conversations") as tally:
        tally.advance()
        tally.advance()
    lines = log.getvalue().splitlines()
    assert lines[0] == "  re-executing bidder-b: 0/2 conversations …"
    assert lines[-1].startswith("  re-executing bidder-b: 2/2 conversations in ")
