"""Every fact Caxton records: frozen, past-tense payloads. Storage metadata lives in `Recorded`.

Times are milliseconds since the Unix epoch, given by the shell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, assert_never

from caxton.domain.acl import AclMessage
from caxton.domain.ids import (
    agent_stream,
    conversation_stream,
    node_stream,
    shard_stream,
    tool_stream,
)

DEFAULT_MEMORY_BYTES = 64 << 20
DEFAULT_TIMEOUT_MS = 5_000
DEFAULT_MAILBOX = 1_024
DEFAULT_SNAPSHOT_EVERY = 100
"""An instance with memory is snapshotted after every this many handlings (per agent)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-instance limits: linear memory, a wall-clock budget per message, mailbox size."""

    memory_bytes: int = DEFAULT_MEMORY_BYTES
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    mailbox: int = DEFAULT_MAILBOX


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """At most `max_restarts` within `window_ms`, backing off exponentially, then `failed`."""

    max_restarts: int = 3
    window_ms: int = 60_000
    backoff_initial_ms: int = 100
    backoff_max_ms: int = 5_000


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCall:
    """One journaled answer of the host to a nondeterministic call (`now`, `random`, tools)."""

    kind: str
    value: str


# --- agents ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDeployed:
    agent: str
    component: str
    component_size: int
    replicas: int
    capabilities: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    config: str = ""
    tools: tuple[str, ...] = ()
    """Tools it may call: `server.tool` or `server.*` (caxton.domain.tools)."""
    keep_memory: bool = False
    """A redeploy that keeps each replica's memory: the new build re-executes the inputs
    of the old one's memory (`--keep-memory`) instead of starting fresh."""
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    """Handlings between two snapshots of an instance with memory; 0: never (a rebuild
    then re-executes every input since the memory began)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStarted:
    """An instance ran `init`. `memory`: it keeps memory (its component exports
    `snapshot` and `restore`, and its snapshot after `init` is not empty), rebuilt at every
    later start by re-executing its inputs; `rebuilt` of them were re-executed for this
    start (after restoring the snapshot taken after `restored` handlings, if any), in
    `rebuild_us`."""

    agent: str
    replica: int
    incarnation: int
    journal: tuple[HostCall, ...] = ()
    memory: bool = False
    rebuilt: int = 0
    restored: int = 0
    rebuild_us: int = 0
    diverged: str = ""
    """After a `--keep-memory` redeploy: the handlings the new build answered otherwise
    than the record while its memory was rebuilt (how many, the first); "" when none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTrapped:
    """An instance trapped, ran out of fuel or time, or hit its memory limit."""

    agent: str
    replica: int
    incarnation: int
    kind: str
    reason: str
    message_id: str = ""
    conversation_id: str = ""
    duration_us: int = 0
    cpu_us: int = 0
    """CPU time of the call that trapped, as `MessageHandled.cpu_us`."""
    dequeued_us: int = 0
    started_us: int = 0
    """When the message was taken from the mailbox and the call began, as in
    `MessageHandled`; 0 in logs written before they were recorded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSnapshotted:
    """An instance's own memory (what its `snapshot()` returned), taken after the
    handling of `message_id`, the `handled`-th of its memory: a rebuild restores it and
    re-executes only what the instance handled after it."""

    agent: str
    replica: int
    handled: int
    state: str
    message_id: str = ""
    conversation_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageQuarantined:
    """A handled message whose re-execution trapped while an instance's memory was
    rebuilt: that rebuild and every later one by the same build skip it (a poison message
    is tried once per build)."""

    agent: str
    replica: int
    message_id: str
    conversation_id: str
    reason: str
    component: str = ""
    """The build it trapped on: another build's rebuild tries it again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRestarting:
    agent: str
    replica: int
    attempt: int
    delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFailed:
    """The restart budget is spent: the instance stays down until redeployed."""

    agent: str
    replica: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStopped:
    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRemoved:
    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentReconfigured:
    """`caxton config set`: new values for some of an agent's settings, applied to its
    running instances without a restart. `None` leaves a setting as it was."""

    agent: str
    memory_bytes: int | None = None
    timeout_ms: int | None = None
    mailbox: int | None = None
    max_restarts: int | None = None
    restart_window_ms: int | None = None
    breaker_timeout_ms: int | None = None
    breaker_threshold: int | None = None
    tools: tuple[str, ...] | None = None


# --- messages -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent:
    """A message accepted into the log, with the instances (`name#replica`) or clients
    it will be delivered to. Undeliverable receivers are in `MessageDeadLettered`."""

    message: AclMessage
    deliveries: tuple[str, ...]
    cause: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageHandled:
    """An instance handled a delivered message; `error` is the agent's own error reply."""

    message_id: str
    conversation_id: str
    agent: str
    replica: int
    journal: tuple[HostCall, ...] = ()
    duration_us: int = 0
    error: str = ""
    cpu_us: int = 0
    """CPU time of the guest call (its thread's), where `duration_us` is wall time with
    tool waits included; 0 in logs written before it was recorded."""
    dequeued_us: int = 0
    """When the instance took the message from its mailbox, in microseconds since the
    Unix epoch: its queue wait began at its `MessageSent`'s commit. 0 in logs written
    before it was recorded."""
    started_us: int = 0
    """When the guest call began (microseconds since the Unix epoch); it ended
    `duration_us` later. After `dequeued_us` by the wait for a worker thread, if any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeadLettered:
    message_id: str
    conversation_id: str
    receiver: str
    reason: str


# --- the node -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStarted:
    node: str
    address: str
    version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStopped:
    node: str


# --- the cluster ------------------------------------------------------------
# Ownership moves only through a fenced claim on the shared log's lease table; these
# events record what the claims decided, and what the failure detector saw.


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardClaimed:
    """`node` holds `shard`'s lease at `epoch`, higher than any before: appends that
    depend on the shard are accepted from it alone until the next claim."""

    shard: int
    node: str
    epoch: int
    previous: str = ""
    """The node the shard was taken from ("" when it had no owner)."""
    reason: str = ""
    """Why: "unowned", "expired" (the owner's lease ran out), "released"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardReleased:
    """`node` gave `shard` up (a graceful stop): another node may claim it at once."""

    shard: int
    node: str
    epoch: int


MemberState = Literal["alive", "suspect", "dead", "left"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberChanged:
    """The failure detector of node `by` saw `node` change state (SWIM's verdicts are
    hints: they never move a shard by themselves)."""

    node: str
    state: MemberState
    by: str
    incarnation: int = 0
    address: str = ""


# --- tools ----------------------------------------------------------------
# A call made while handling a message goes to that conversation's stream; a call
# made from the shell (`caxton tools call`) or during `init` to the tool's stream.


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled:
    """An agent (or `caxton tools call`, agent "") called `tool` of MCP server `server`."""

    call_id: str
    server: str
    tool: str
    arguments: str
    agent: str = ""
    conversation_id: str = ""
    message_id: str = ""
    at_us: int = 0
    """When the agent made the call (microseconds since the Unix epoch; the event's
    `at` is its commit, after the handling); 0 in logs written before it was recorded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolReturned:
    """The tool's result as the agent received it; `size` is the whole result's, in bytes,
    when it was larger than the configured maximum and `truncated`."""

    call_id: str
    server: str
    tool: str
    result: str
    duration_us: int
    agent: str = ""
    conversation_id: str = ""
    truncated: bool = False
    size: int = 0
    at_us: int = 0
    """When the agent got the result (microseconds since the Unix epoch), as
    `ToolCalled.at_us`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFailed:
    """A call that gave no result: `kind` is refused, breaker-open, timeout, server-error
    or tool-error; `reason` is the text the agent received."""

    call_id: str
    server: str
    tool: str
    kind: str
    reason: str
    duration_us: int = 0
    agent: str = ""
    conversation_id: str = ""
    at_us: int = 0
    """When the agent got the failure (microseconds since the Unix epoch), as
    `ToolCalled.at_us`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerOpened:
    """Calls to `server` (by `agent`, or by everyone when "") now fail fast until `reset_ms`
    has passed; `conversation_id` is the call's that tripped it."""

    server: str
    failures: int
    reset_ms: int
    reason: str
    agent: str = ""
    conversation_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerHalfOpened:
    """The reset time passed: one trial call may go through."""

    server: str
    agent: str = ""
    conversation_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerClosed:
    """A trial call succeeded: calls go through again."""

    server: str
    agent: str = ""
    conversation_id: str = ""


AgentEvent = (
    AgentDeployed
    | AgentStarted
    | AgentSnapshotted
    | AgentTrapped
    | AgentRestarting
    | AgentFailed
    | AgentStopped
    | AgentRemoved
    | AgentReconfigured
)
MessageEvent = MessageSent | MessageHandled | MessageDeadLettered | MessageQuarantined
NodeEvent = NodeStarted | NodeStopped | ShardClaimed | ShardReleased | MemberChanged
ToolEvent = (
    ToolCalled | ToolReturned | ToolFailed | BreakerOpened | BreakerHalfOpened | BreakerClosed
)
Event = AgentEvent | MessageEvent | NodeEvent | ToolEvent

EVENT_TYPES: tuple[type[Event], ...] = (
    AgentDeployed,
    AgentStarted,
    AgentTrapped,
    AgentRestarting,
    AgentFailed,
    AgentStopped,
    AgentRemoved,
    AgentReconfigured,
    MessageSent,
    MessageHandled,
    MessageDeadLettered,
    NodeStarted,
    NodeStopped,
    ShardClaimed,
    ShardReleased,
    MemberChanged,
    ToolCalled,
    ToolReturned,
    ToolFailed,
    BreakerOpened,
    BreakerHalfOpened,
    BreakerClosed,
    AgentSnapshotted,
    MessageQuarantined,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """An event as the log holds it: its global position, stream, version and time."""

    position: int
    stream: str
    version: int
    at: int
    event: Event
    traceparent: str = ""
    node: str = ""
    """The node of a cluster that committed it; "" outside a cluster (and in older logs)."""


def stream_of(event: Event) -> str:
    """The stream an event belongs to: its agent, its conversation, or its node."""
    match event:
        case MessageSent(message=m):
            return conversation_stream(m.conversation_id)
        case (
            MessageHandled(conversation_id=c)
            | MessageDeadLettered(conversation_id=c)
            | MessageQuarantined(conversation_id=c)
        ):
            return conversation_stream(c)
        case NodeStarted(node=n) | NodeStopped(node=n) | MemberChanged(by=n):
            return node_stream(n)  # one writer each: the node itself
        case ShardClaimed(shard=s) | ShardReleased(shard=s):
            return shard_stream(s)
        case (
            ToolCalled(server=s, conversation_id=c)
            | ToolReturned(server=s, conversation_id=c)
            | ToolFailed(server=s, conversation_id=c)
            | BreakerOpened(server=s, conversation_id=c)
            | BreakerHalfOpened(server=s, conversation_id=c)
            | BreakerClosed(server=s, conversation_id=c)
        ):
            return conversation_stream(c) if c else tool_stream(s)
        case (
            AgentDeployed(agent=a)
            | AgentStarted(agent=a)
            | AgentSnapshotted(agent=a)
            | AgentTrapped(agent=a)
            | AgentRestarting(agent=a)
            | AgentFailed(agent=a)
            | AgentStopped(agent=a)
            | AgentRemoved(agent=a)
            | AgentReconfigured(agent=a)
        ):
            return agent_stream(a)
        case _:
            assert_never(event)
