"""`caxton config set`: an agent's live settings, their validation, and where each came from.

A change is one `AgentReconfigured` event folded into the agent's state, so the
effective values, and whether each is the default, the deploy's or a `config set`,
are a pure function of the log. A redeploy starts again from the deploy's values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from caxton.domain.deployment import (
    MAX_MAILBOX,
    MAX_MEMORY,
    MAX_TIMEOUT_MS,
    MIN_MEMORY,
    MIN_TIMEOUT_MS,
)
from caxton.domain.errors import InvalidAgentSpec, quoted
from caxton.domain.events import AgentReconfigured, Limits, RestartPolicy
from caxton.domain.frozen import replace
from caxton.domain.units import format_duration, format_size

if TYPE_CHECKING:
    from caxton.domain.agents import AgentState

Source = Literal["default", "deploy", "config set"]
MAX_RESTARTS = 1_000
MAX_RESTART_WINDOW_MS = 86_400_000
MAX_BREAKER_THRESHOLD = 1_000
_GRANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\.(\*|[A-Za-z0-9][A-Za-z0-9_.\-]{0,127})$")


@dataclass(frozen=True, slots=True)
class _Setting:
    name: str
    """As written after `caxton config set --agent NAME --`."""
    field: str
    """The `AgentReconfigured` field."""
    read: Callable[[AgentState], Any]
    default: Any
    show: Callable[[Any], str]


def _breaker_timeout(ms: int) -> str:
    return format_duration(ms) if ms else "each server's"


def _threshold(n: int) -> str:
    return str(n) if n else "each server's"


def _tools(tools: tuple[str, ...]) -> str:
    return ", ".join(tools) if tools else "none"


SETTINGS: tuple[_Setting, ...] = (
    _Setting(
        "memory",
        "memory_bytes",
        lambda a: a.limits.memory_bytes,
        Limits().memory_bytes,
        format_size,
    ),
    _Setting(
        "timeout", "timeout_ms", lambda a: a.limits.timeout_ms, Limits().timeout_ms, format_duration
    ),
    _Setting("mailbox", "mailbox", lambda a: a.limits.mailbox, Limits().mailbox, str),
    _Setting(
        "restart.max",
        "max_restarts",
        lambda a: a.restart.max_restarts,
        RestartPolicy().max_restarts,
        str,
    ),
    _Setting(
        "restart.window",
        "restart_window_ms",
        lambda a: a.restart.window_ms,
        RestartPolicy().window_ms,
        format_duration,
    ),
    _Setting(
        "circuit-breaker.timeout",
        "breaker_timeout_ms",
        lambda a: a.tool_timeout_ms,
        0,
        _breaker_timeout,
    ),
    _Setting(
        "circuit-breaker.threshold",
        "breaker_threshold",
        lambda a: a.breaker_threshold,
        0,
        _threshold,
    ),
    _Setting("tools", "tools", lambda a: a.tools, (), _tools),
)
SETTING_NAMES = tuple(s.name for s in SETTINGS)


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectiveSetting:
    name: str
    value: str
    source: Source


def changed_settings(event: AgentReconfigured) -> tuple[str, ...]:
    """The names of the settings the event sets, in `SETTINGS` order."""
    return tuple(s.name for s in SETTINGS if getattr(event, s.field) is not None)


def validate_reconfiguration(event: AgentReconfigured) -> None:
    """Raises `InvalidAgentSpec` naming the first setting that cannot be honoured."""
    if not changed_settings(event):
        raise InvalidAgentSpec("settings", "nothing to set; give at least one setting")
    checks: tuple[tuple[str, int | None, int, int, str], ...] = (
        ("memory", event.memory_bytes, MIN_MEMORY, MAX_MEMORY, "between 64KiB and 4GiB"),
        ("timeout", event.timeout_ms, MIN_TIMEOUT_MS, MAX_TIMEOUT_MS, "between 1ms and 10m"),
        ("mailbox", event.mailbox, 1, MAX_MAILBOX, f"between 1 and {MAX_MAILBOX} messages"),
        ("restart.max", event.max_restarts, 0, MAX_RESTARTS, f"between 0 and {MAX_RESTARTS}"),
        (
            "restart.window",
            event.restart_window_ms,
            1_000,
            MAX_RESTART_WINDOW_MS,
            "between 1s and 1d",
        ),
        (
            "circuit-breaker.timeout",
            event.breaker_timeout_ms,
            MIN_TIMEOUT_MS,
            MAX_TIMEOUT_MS,
            "between 1ms and 10m",
        ),
        (
            "circuit-breaker.threshold",
            event.breaker_threshold,
            1,
            MAX_BREAKER_THRESHOLD,
            f"between 1 and {MAX_BREAKER_THRESHOLD} failures",
        ),
    )
    for name, value, low, high, allowed in checks:
        if value is not None and not low <= value <= high:
            raise InvalidAgentSpec(name, f"must be {allowed}")
    for grant in event.tools or ():
        if not _GRANT.match(grant):
            raise InvalidAgentSpec(
                "tools", f"{quoted(grant)} is not a tool grant (write server.tool or server.*)"
            )


def reconfigure(agent: AgentState, event: AgentReconfigured) -> AgentState:
    """The agent with the event's settings applied (the fold of `AgentReconfigured`)."""
    limits = _changed(
        agent.limits,
        memory_bytes=event.memory_bytes,
        timeout_ms=event.timeout_ms,
        mailbox=event.mailbox,
    )
    restart = _changed(
        agent.restart, max_restarts=event.max_restarts, window_ms=event.restart_window_ms
    )
    changed = set(changed_settings(event)) | set(agent.reconfigured)
    reconfigured: AgentState = _changed(
        agent,
        limits=limits,
        restart=restart,
        tool_timeout_ms=event.breaker_timeout_ms,
        breaker_threshold=event.breaker_threshold,
        tools=event.tools,
        reconfigured=tuple(name for name in SETTING_NAMES if name in changed),
    )
    return reconfigured


def effective_settings(agent: AgentState) -> tuple[EffectiveSetting, ...]:
    """Each setting's value as it applies now, and whether it is the default, the
    deploy's or set by `caxton config set`."""
    settings = []
    for setting in SETTINGS:
        value = setting.read(agent)
        source: Source
        if setting.name in agent.reconfigured:
            source = "config set"
        elif value == setting.default:
            source = "default"
        else:
            source = "deploy"
        settings.append(
            EffectiveSetting(name=setting.name, value=setting.show(value), source=source)
        )
    return tuple(settings)


def _changed(obj: Any, **values: Any) -> Any:
    given = {k: v for k, v in values.items() if v is not None}
    return replace(obj, **given) if given else obj
