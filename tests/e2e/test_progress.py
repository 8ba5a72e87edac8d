"""Progress of long steps in a log: each stage is said to still run every heartbeat of its
own (a stage started a moment before the shared tick was reported at '0 s so far')."""

from __future__ import annotations

import time

from caxton.shell.cli.progress import Stage


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
