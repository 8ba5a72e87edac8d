"""Restart decisions: a trapped instance restarts with backoff until its budget is spent."""

from __future__ import annotations

from caxton.domain.agents import InstanceState
from caxton.domain.events import AgentFailed, AgentRestarting, Event, RestartPolicy

DEFAULT_POLICY = RestartPolicy()


def restarts_in_window(instance: InstanceState, *, now: int, policy: RestartPolicy) -> int:
    """How many restarts happened within the last `policy.window_ms` before `now`."""
    return sum(1 for at in instance.restarts if now - at < policy.window_ms)


def decide_restart(
    instance: InstanceState, *, agent: str, now: int, policy: RestartPolicy = DEFAULT_POLICY
) -> list[Event]:
    """Restart after `backoff_initial_ms * 2**n` (capped), or fail once the window is full."""
    n = restarts_in_window(instance, now=now, policy=policy)
    if n < policy.max_restarts:
        delay = min(policy.backoff_initial_ms * 2**n, policy.backoff_max_ms)
        return [
            AgentRestarting(agent=agent, replica=instance.replica, attempt=n + 1, delay_ms=delay)
        ]
    window = _seconds(policy.window_ms)
    return [
        AgentFailed(
            agent=agent,
            replica=instance.replica,
            reason=f"restarted {n} times in {window}s; giving up",
        )
    ]


def _seconds(ms: int) -> str:
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms / 1000:g}"
