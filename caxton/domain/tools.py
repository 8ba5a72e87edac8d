"""The tool bridge's rules: grants, the circuit breaker, timeouts, and what a call records.

Pure decisions; the shell (`caxton.shell.tools`) does the calling. Times are
milliseconds given by the caller.

The breaker, one per tool server (or per server and agent, for an agent with its own
`circuit-breaker.threshold`), as a transition table:

    state      on                           next       records
    closed     success                      closed     -
    closed     failure, below threshold     closed     -
    closed     failure, at threshold        open       BreakerOpened
    open       call before reset time       open       (the call fails fast)
    open       call after reset time        half-open  BreakerHalfOpened (it is the trial)
    half-open  call while the trial runs    half-open  (the call fails fast)
    half-open  trial succeeds               closed     BreakerClosed
    half-open  trial fails                  open       BreakerOpened

Only the server's own failures count (`timeout`, `server-error`): a refused call, a
call the breaker stopped, or a tool that answered with an error says nothing about the
server's health.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from caxton.domain import strict_json
from caxton.domain.errors import InvalidAgentSpec, bounded, quoted
from caxton.domain.events import BreakerClosed, BreakerHalfOpened, BreakerOpened, Event
from caxton.domain.frozen import replace
from caxton.domain.ids import derive_id

FailureKind = Literal["refused", "breaker-open", "timeout", "server-error", "tool-error"]
FAILURE_KINDS: tuple[FailureKind, ...] = (
    "refused",
    "breaker-open",
    "timeout",
    "server-error",
    "tool-error",
)
_COUNTED: frozenset[str] = frozenset({"timeout", "server-error"})

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_RESET_MS = 30_000
DEFAULT_MAX_RESULT_BYTES = 1 << 20
MIN_RESULT_BYTES = 1024

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TOOL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}")


# --- grants ---------------------------------------------------------------


def is_valid_server_name(name: str) -> bool:
    """Tool server names: letters, digits, '_' and '-', at most 64 (no '.', which splits grants)."""
    return _NAME.fullmatch(name) is not None


def parse_grants(text: str | Iterable[str]) -> tuple[str, ...]:
    """`db.read_query,time.*` as a sorted tuple; raises `InvalidAgentSpec` on a bad entry."""
    items = text.split(",") if isinstance(text, str) else list(text)
    grants: set[str] = set()
    for raw in items:
        grant = raw.strip()
        if not grant:
            continue
        server, dot, tool = grant.partition(".")
        if (
            not dot
            or not is_valid_server_name(server)
            or not (tool == "*" or _TOOL.fullmatch(tool))
        ):
            raise InvalidAgentSpec(
                "tools",
                f"{quoted(grant)} is not SERVER.TOOL or SERVER.* (for example db.read_query)",
            )
        grants.add(grant)
    return tuple(sorted(grants))


def validate_grants(grants: Iterable[str], servers: Iterable[str]) -> tuple[str, ...]:
    """The grants, sorted; raises `InvalidAgentSpec` for a malformed grant or one naming no
    configured server."""
    known = sorted(servers)
    parsed = parse_grants(grants)
    for grant in parsed:
        server = grant.partition(".")[0]
        if server not in known:
            listed = ", ".join(known) if known else "none is configured"
            raise InvalidAgentSpec(
                "tools",
                f"{quoted(grant)} names no tool server of this server (configured: {listed})",
            )
    return parsed


def is_granted(grants: Iterable[str], server: str, tool: str) -> bool:
    """Whether `server.tool` is in the grants, exactly or by `server.*`."""
    wanted = f"{server}.{tool}"
    return any(g == wanted or g == f"{server}.*" for g in grants)


def unknown_server(server: str, known_servers: Iterable[str]) -> str:
    """Why a call to `server` cannot be made, or "" when the server is configured."""
    known = sorted(known_servers)
    if server in known:
        return ""
    listed = ", ".join(known) if known else "none is configured"
    return f"no tool server named {quoted(server)} (configured: {listed})"


def call_fault(server: str, tool: str) -> str:
    """Why a call cannot name this server and tool, or "" when both are names (bounded, so
    a call is recorded and quoted whole)."""
    if not is_valid_server_name(server):
        return f"{quoted(server)} is not a tool server name"
    if not _TOOL.fullmatch(tool):
        return f"{quoted(tool)} is not a tool name (1-128 of [A-Za-z0-9_.-/])"
    return ""


def not_granted(agent: str, server: str, tool: str) -> str:
    return (
        f"{server}.{tool} is not granted to {agent} "
        f"(grant it with --tools {server}.{tool} or --tools {server}.*)"
    )


def parse_arguments(args_json: str) -> dict[str, Any] | str:
    """The call's arguments as a dict, or why they cannot be sent (a JSON object is required)."""
    if not args_json.strip():
        return {}
    try:
        value = strict_json.loads(args_json)
    except ValueError as exc:
        return f"arguments are not valid JSON ({bounded(str(exc), 200)})"
    if value is None:
        return {}
    if not isinstance(value, dict):
        return f"arguments must be a JSON object, not {type(value).__name__}"
    return value


# --- settings -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPolicy:
    """What bounds one call: its timeout, and the breaker it goes through."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    breaker_reset_ms: int = DEFAULT_BREAKER_RESET_MS
    breaker_agent: str = ""
    """The agent whose own breaker this call goes through; "" for the server's shared one."""


def call_policy(
    *,
    timeout_ms: int,
    breaker_threshold: int,
    breaker_reset_ms: int,
    agent: str = "",
    agent_timeout_ms: int = 0,
    agent_threshold: int = 0,
) -> CallPolicy:
    """The server's settings, with the agent's `circuit-breaker.*` overrides where set."""
    return CallPolicy(
        timeout_ms=agent_timeout_ms if agent_timeout_ms > 0 else timeout_ms,
        breaker_threshold=agent_threshold if agent_threshold > 0 else breaker_threshold,
        breaker_reset_ms=breaker_reset_ms,
        breaker_agent=agent if agent_threshold > 0 else "",
    )


# --- the breaker ----------------------------------------------------------

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Breaker:
    """One breaker: its state, consecutive counted failures, and when it opened."""

    state: BreakerState = "closed"
    failures: int = 0
    opened_at: int = 0
    last_reason: str = ""


CLOSED = Breaker()


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerKey:
    """A server's shared breaker (`agent` ""), or one agent's own breaker for that server."""

    server: str
    agent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """Whether a call may go to the server; `reason` says why not."""

    breaker: Breaker
    events: tuple[Event, ...] = ()
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return not self.reason


def admit(
    breaker: Breaker, *, key: BreakerKey, policy: CallPolicy, now: int, conversation_id: str = ""
) -> Admission:
    """The breaker's answer to a call about to be made."""
    match breaker.state:
        case "closed":
            return Admission(breaker=breaker)
        case "open":
            reopens = breaker.opened_at + policy.breaker_reset_ms
            if now < reopens:
                return Admission(
                    breaker=breaker,
                    reason=(
                        f"circuit breaker open for {key.server}"
                        f"{_whose(key)} after {breaker.failures} failures "
                        f"(last: {breaker.last_reason}); next trial in {reopens - now} ms"
                    ),
                )
            trial = replace(breaker, state="half-open")
            half = BreakerHalfOpened(
                server=key.server, agent=key.agent, conversation_id=conversation_id
            )
            return Admission(breaker=trial, events=(half,))
        case "half-open":
            return Admission(
                breaker=breaker,
                reason=f"circuit breaker half-open for {key.server}{_whose(key)}: "
                "a trial call is in progress",
            )


def settle(
    breaker: Breaker,
    *,
    key: BreakerKey,
    policy: CallPolicy,
    now: int,
    failure_kind: str = "",
    reason: str = "",
    conversation_id: str = "",
) -> tuple[Breaker, tuple[Event, ...]]:
    """The breaker after a call it admitted ended (`failure_kind` "" for a success)."""
    if failure_kind and failure_kind not in _COUNTED:
        # the server answered: it is healthy; a half-open breaker's trial succeeded
        failure_kind = ""
    if not failure_kind:
        if breaker.state == "half-open":
            closed = BreakerClosed(
                server=key.server, agent=key.agent, conversation_id=conversation_id
            )
            return CLOSED, (closed,)
        return (CLOSED if breaker.failures else breaker), ()
    failures = breaker.failures + 1
    if breaker.state == "half-open" or failures >= policy.breaker_threshold:
        opened = Breaker(state="open", failures=failures, opened_at=now, last_reason=reason)
        event = BreakerOpened(
            server=key.server,
            agent=key.agent,
            failures=failures,
            reset_ms=policy.breaker_reset_ms,
            reason=reason,
            conversation_id=conversation_id,
        )
        return opened, (event,)
    return replace(breaker, failures=failures, last_reason=reason), ()


def counts_against_breaker(kind: str) -> bool:
    return kind in _COUNTED


def _whose(key: BreakerKey) -> str:
    return f" (calls by {key.agent})" if key.agent else ""


# --- what is recorded -----------------------------------------------------


def tool_call_id(scope: str, index: int) -> str:
    """The id of the `index`-th tool call of a handling (scope: the message id, or the agent's
    name and incarnation for `init`): a redelivery yields the same ids."""
    return derive_id("tool", scope, str(index))


def journal_value(
    server: str, tool: str, args: str, *, ok: str | None = None, error: str | None = None
) -> str:
    """The `HostCall(kind="call-tool")` value: what re-execution feeds back to the agent."""
    if (ok is None) == (error is None):
        raise ValueError("a tool call's journal entry holds exactly one of ok and error")
    entry: dict[str, str] = {"server": server, "tool": tool, "args": args}
    if ok is not None:
        entry["ok"] = ok
    else:
        entry["error"] = error or ""
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True, kw_only=True)
class JournaledCall:
    server: str
    tool: str
    args: str
    ok: str | None = None
    error: str | None = None


def read_journal_value(value: str) -> JournaledCall:
    """The inverse of `journal_value`; raises ValueError on anything else."""
    data = json.loads(value)
    if not isinstance(data, dict) or ("ok" in data) == ("error" in data):
        raise ValueError(f"not a call-tool journal value: {value[:80]!r}")
    return JournaledCall(
        server=str(data["server"]),
        tool=str(data["tool"]),
        args=str(data["args"]),
        ok=str(data["ok"]) if "ok" in data else None,
        error=str(data["error"]) if "error" in data else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BoundedResult:
    """The result text an agent receives, and whether it was cut to fit."""

    text: str
    truncated: bool = False
    size: int = 0


def bounded_result(result_json: str, text: str, max_bytes: int) -> BoundedResult:
    """`result_json` when it fits in `max_bytes` (UTF-8); otherwise a smaller JSON object
    with the result's text cut to fit, `"truncated": true` and the whole `"size"`."""
    size = len(result_json.encode())
    if size <= max_bytes:
        return BoundedResult(text=result_json)
    budget = max(max_bytes, MIN_RESULT_BYTES)
    keep = text
    while True:
        cut = json.dumps(
            {
                "content": [{"type": "text", "text": keep}],
                "isError": False,
                "truncated": True,
                "size": size,
            },
            ensure_ascii=False,
        )
        over = len(cut.encode()) - budget
        if over <= 0:
            return BoundedResult(text=cut, truncated=True, size=size)
        keep = keep[: max(0, len(keep) - max(over, 16))]
