"""An agent instance's own memory, rebuilt from the log: what to re-execute, in what order.

An instance keeps memory when its component exports `snapshot` and `restore` and its
snapshot after `init` is not empty (`AgentStarted.memory`). The memory begins with that
`init` and grows with every message the instance handles without trapping (a handling
that traps is never committed, so it is not part of the memory). Every N handlings
its `snapshot()` is recorded (`AgentSnapshotted`, in the batch of the handling it
follows). A new instance of the same replica (after a trap, a server restart, a
failover, or a redeploy with `--keep-memory`) is rebuilt: `init` re-executed with the
recorded answers of the memory's first `init`, the last snapshot restored, and the
messages handled after it re-executed with their recorded host answers (`now`,
`random`, tool results), their sends discarded. A message whose re-execution traps is
quarantined (`MessageQuarantined`) and skipped by every later rebuild.

This module is the pure part: `Inputs` collects, from events read in log order, what
an instance handled after a position; the shell reads the log and runs wasmtime
(`caxton.shell.runtime.memory`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from caxton.domain.acl import AclMessage
from caxton.domain.events import (
    AgentDeployed,
    AgentRemoved,
    AgentSnapshotted,
    AgentStarted,
    HostCall,
    Limits,
    MessageHandled,
    MessageQuarantined,
    MessageSent,
    Recorded,
)
from caxton.domain.ids import instance_key


@dataclass(frozen=True, slots=True, kw_only=True)
class Handling:
    """One message the instance handled, with the host answers it got doing so."""

    position: int
    message: AclMessage
    journal: tuple[HostCall, ...]
    error: str = ""
    sent: tuple[AclMessage, ...] = ()
    """What it sent in answer, as recorded (a `--keep-memory` rebuild compares)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How to rebuild one instance's memory: the first `init`'s answers, the snapshot to
    restore (None: none, re-execute from the start of the memory) and what it handled
    after it, in order, without the quarantined messages."""

    agent: str
    replica: int
    component: str
    """The build in force (the digest of the last deploy's component)."""
    config: str
    limits: Limits
    init_journal: tuple[HostCall, ...]
    snapshot: str | None
    restored: int
    """Handlings the snapshot holds (0 without one)."""
    handlings: tuple[Handling, ...]
    quarantined: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Memory:
    """An instance's memory as of a position of the log (rebuilt in a sandbox): what its
    `snapshot()` returns, the handlings it holds (`restored` by the snapshot it was rebuilt
    from, `rebuilt` re-executed after it), the messages skipped."""

    agent: str
    replica: int
    state: str
    handled: int
    restored: int
    rebuilt: int
    position: int
    quarantined: tuple[str, ...]
    rebuild_us: int


@dataclass(slots=True)
class Inputs:
    """Collects, from events fed in log order, what instance `agent#replica` handled:
    the messages delivered to it (kept by id), its handlings, the messages quarantined.
    Fed only the events after a snapshot, it may meet a handling of a message sent
    before: `missing` names those conversations, whose messages are then fed too."""

    agent: str
    replica: int
    until: int | None = None
    """Collect nothing past this position (the memory as of an earlier step)."""
    _key: str = ""
    _messages: dict[str, AclMessage] = field(default_factory=dict)
    _handled: list[tuple[int, MessageHandled]] = field(default_factory=list)
    _answers: dict[str, list[AclMessage]] = field(default_factory=dict)
    quarantined: set[str] = field(default_factory=set)
    init_journal: tuple[HostCall, ...] = ()
    snapshot: AgentSnapshotted | None = None
    deployed: AgentDeployed | None = None

    def __post_init__(self) -> None:
        self._key = instance_key(self.agent, self.replica)

    def add(self, recorded: Recorded) -> None:
        if self.until is not None and recorded.position > self.until:
            return
        event = recorded.event
        if isinstance(event, MessageSent):
            message = event.message
            if self._key in event.deliveries:
                self._messages[message.id] = message
            if event.cause and message.sender == self.agent:
                self._answers.setdefault(event.cause, []).append(message)
        elif isinstance(event, MessageHandled):
            if event.agent == self.agent and event.replica == self.replica:
                self._handled.append((recorded.position, event))
        elif (
            isinstance(event, MessageQuarantined)
            and event.agent == self.agent
            and event.replica == self.replica
            and (
                not event.component
                or self.deployed is None
                or event.component == self.deployed.component
            )
        ):
            self.quarantined.add(event.message_id)  # by this build: another may take it

    def add_message(self, recorded: Recorded) -> None:
        """A message of a conversation read because `missing` named it."""
        event = recorded.event
        if isinstance(event, MessageSent) and self._key in event.deliveries:
            self._messages.setdefault(event.message.id, event.message)

    def missing(self) -> set[str]:
        """Conversations of handled messages whose sends were not fed."""
        return {h.conversation_id for _, h in self._handled if h.message_id not in self._messages}

    def plan(self) -> Plan:
        handlings = tuple(
            Handling(
                position=position,
                message=self._messages[h.message_id],
                journal=h.journal,
                error=h.error,
                sent=tuple(self._answers.get(h.message_id, ())),
            )
            for position, h in self._handled
            if h.message_id not in self.quarantined and h.message_id in self._messages
        )
        snapshot = self.snapshot
        deployed = self.deployed
        return Plan(
            agent=self.agent,
            replica=self.replica,
            component=deployed.component if deployed is not None else "",
            config=deployed.config if deployed is not None else "",
            limits=deployed.limits if deployed is not None else Limits(),
            init_journal=self.init_journal,
            snapshot=snapshot.state if snapshot is not None else None,
            restored=snapshot.handled if snapshot is not None else 0,
            handlings=handlings,
            quarantined=frozenset(self.quarantined),
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where the memory of a replica began (its first `AgentStarted` keeping memory, None
    when it keeps none), its last snapshot, and the deploy in force."""

    origin: Recorded | None
    snapshot: Recorded | None
    deployed: AgentDeployed | None


def lineage(agent_events: Iterable[Recorded], replica: int) -> Lineage:
    """The memory of `replica`, from the agent's own stream read in order, as the fold
    (`caxton.domain.agents`) keeps it: a deploy that does not keep memory, or a start
    without memory, ends a memory."""
    origin: Recorded | None = None
    snapshot: Recorded | None = None
    deployed: AgentDeployed | None = None
    for r in agent_events:
        event = r.event
        if isinstance(event, AgentDeployed):
            kept = event.keep_memory and deployed is not None and replica < deployed.replicas
            if not kept:
                origin = snapshot = None
            deployed = event
        elif isinstance(event, AgentRemoved):
            origin = snapshot = deployed = None
        elif isinstance(event, AgentStarted) and event.replica == replica:
            if not event.memory:
                origin = snapshot = None
            elif origin is None:
                origin = r
        elif (
            isinstance(event, AgentSnapshotted) and event.replica == replica and origin is not None
        ):
            snapshot = r
    return Lineage(origin, snapshot, deployed)


REBUILD_BUDGET = 4
"""A re-executed handling gets this many times its agent's time budget: a machine busier
than when it was recorded must not make a message look like poison."""


def rebuilding(limits: Limits) -> Limits:
    """The limits an instance is rebuilt under."""
    return replace(limits, timeout_ms=limits.timeout_ms * REBUILD_BUDGET)


def due(handled: int, every: int) -> bool:
    """Whether the `handled`-th handling of a memory is followed by a snapshot."""
    return every > 0 and handled > 0 and handled % every == 0


def without(plan: Plan, message_id: str) -> Plan:
    """The plan with a quarantined message left out."""
    return replace(
        plan,
        handlings=tuple(h for h in plan.handlings if h.message.id != message_id),
        quarantined=plan.quarantined | {message_id},
    )
