"""Restart decisions: exponential backoff within the window, then failed."""

from __future__ import annotations

from caxton.domain import (
    AgentFailed,
    AgentRestarting,
    InstanceState,
    RestartPolicy,
    decide_restart,
)


def trapped(*restarts: int) -> InstanceState:
    return InstanceState(replica=1, lifecycle="trapped", restarts=restarts)


def test_the_first_trap_restarts_after_the_initial_backoff() -> None:
    assert decide_restart(trapped(), agent="pricer", now=1_000) == [
        AgentRestarting(agent="pricer", replica=1, attempt=1, delay_ms=100)
    ]


def test_backoff_doubles() -> None:
    delays = []
    restarts: tuple[int, ...] = ()
    policy = RestartPolicy(max_restarts=10, backoff_initial_ms=100, backoff_max_ms=1_000)
    for now in range(1_000, 7_000, 1_000):
        [event] = decide_restart(trapped(*restarts), agent="a", now=now, policy=policy)
        assert isinstance(event, AgentRestarting)
        delays.append(event.delay_ms)
        restarts = (*restarts, now)
    assert delays == [100, 200, 400, 800, 1_000, 1_000]


def test_three_restarts_within_a_minute_then_failed() -> None:
    decided = decide_restart(trapped(1_000, 20_000, 40_000), agent="pricer", now=59_000)
    assert decided == [
        AgentFailed(agent="pricer", replica=1, reason="restarted 3 times in 60s; giving up")
    ]


def test_restarts_older_than_the_window_are_forgiven() -> None:
    [event] = decide_restart(trapped(1_000, 20_000, 40_000), agent="pricer", now=61_000)
    assert event == AgentRestarting(agent="pricer", replica=1, attempt=3, delay_ms=400)


def test_a_window_that_is_not_whole_seconds_is_named_exactly() -> None:
    policy = RestartPolicy(max_restarts=1, window_ms=1_500)
    [event] = decide_restart(trapped(100), agent="a", now=200, policy=policy)
    assert isinstance(event, AgentFailed)
    assert event.reason == "restarted 1 times in 1.5s; giving up"
