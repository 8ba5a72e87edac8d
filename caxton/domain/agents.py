"""The fold of agent lifecycles: each deployed agent and the state of each of its replicas."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, assert_never

from caxton.domain.events import (
    DEFAULT_SNAPSHOT_EVERY,
    AgentDeployed,
    AgentFailed,
    AgentReconfigured,
    AgentRemoved,
    AgentRestarting,
    AgentSnapshotted,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    Limits,
    MemberChanged,
    MessageDeadLettered,
    MessageHandled,
    MessageQuarantined,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    RestartPolicy,
    ShardClaimed,
    ShardReleased,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import copier, replace
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.settings import reconfigure

Lifecycle = Literal["deployed", "starting", "running", "trapped", "restarting", "stopped", "failed"]
AgentStatus = Literal["running", "stopped", "removed"]

# Lifecycles in which an instance can still take messages (now or once it is up).
AVAILABLE: frozenset[Lifecycle] = frozenset(
    {"deployed", "starting", "running", "trapped", "restarting"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    """One replica. `restarts` holds the times of its restarts, for the supervision window."""

    replica: int
    lifecycle: Lifecycle = "deployed"
    incarnation: int = 0
    restarts: tuple[int, ...] = ()
    traps: int = 0
    last_error: str = ""
    failure: str = ""
    handled: int = 0
    memory_from: int = 0
    """Where the instance's memory began: the position of the `AgentStarted` whose `init`
    began it; 0 when it keeps none (caxton.domain.memory)."""
    snapshot_at: int = 0
    """The position of its memory's last `AgentSnapshotted`; 0 when none was taken."""
    quarantined: int = 0
    """Messages its rebuilds skipped because their re-execution trapped."""
    started: AgentStarted | None = None
    """Its last start (how its memory was rebuilt then)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentState:
    name: str
    component: str
    component_size: int = 0
    capabilities: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    config: str = ""
    tools: tuple[str, ...] = ()
    """Granted tools, `server.tool` or `server.*`; changed by deploy (and `config set`)."""
    tool_timeout_ms: int = 0
    """`circuit-breaker.timeout` for this agent's tool calls; 0 keeps each server's."""
    breaker_threshold: int = 0
    """`circuit-breaker.threshold`: its own breaker per server after this many failures;
    0 shares each server's breaker."""
    status: AgentStatus = "running"
    deployed_at: int = 0
    reconfigured: tuple[str, ...] = ()
    """Settings changed by `caxton config set` since the last deploy (caxton.domain.settings)."""
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    """Handlings between two snapshots of an instance with memory (0: never)."""
    instances: tuple[InstanceState, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    running: int
    total: int
    problems: tuple[str, ...] = ()


Agents = FrozenMap[str, AgentState]
NO_AGENTS: Agents = FrozenMap()


def deployed(event: AgentDeployed, at: int, before: AgentState | None = None) -> AgentState:
    """A freshly (re)deployed agent: every replica waits to be started, with no memory,
    or with its memory `before` when the deploy keeps it."""
    fresh = tuple(InstanceState(replica=r) for r in range(event.replicas))
    if event.keep_memory and before is not None:
        fresh = tuple(
            _kept(i, before.instances[i.replica]) if i.replica < len(before.instances) else i
            for i in fresh
        )
    return AgentState(
        name=event.agent,
        component=event.component,
        component_size=event.component_size,
        capabilities=event.capabilities,
        limits=event.limits,
        restart=event.restart,
        config=event.config,
        tools=event.tools,
        deployed_at=at,
        snapshot_every=event.snapshot_every,
        instances=fresh,
    )


def _kept(fresh: InstanceState, old: InstanceState) -> InstanceState:
    return replace(
        fresh,
        memory_from=old.memory_from,
        snapshot_at=old.snapshot_at,
        quarantined=old.quarantined,
    )


def evolve(agents: Agents, recorded: Recorded) -> Agents:
    """The agents after one recorded event. Events about unknown agents change nothing."""
    event = recorded.event
    match event:  # the cases run in order: the most frequent event comes first
        case MessageHandled():
            return handled(agents, event)
        case AgentDeployed():
            before = agents.get(event.agent)
            return agents.set(event.agent, deployed(event, recorded.at, before))
        case AgentStarted(agent=name, replica=replica, incarnation=incarnation, memory=memory):
            agent = agents.get(name)
            if agent is None:
                return agents
            position = recorded.position
            started = _with_instance(
                agent,
                replica,
                lambda i: replace(
                    i,
                    lifecycle="running",
                    incarnation=incarnation,
                    memory_from=(i.memory_from or position) if memory else 0,
                    snapshot_at=i.snapshot_at if memory else 0,
                    started=event,
                ),
            )
            return agents.set(name, replace(started, status="running"))
        case AgentSnapshotted(agent=name, replica=replica):
            position = recorded.position
            return _update(
                agents,
                name,
                replica,
                lambda i: replace(i, snapshot_at=position) if i.memory_from else i,
            )
        case MessageQuarantined(agent=name, replica=replica):
            return _update(
                agents, name, replica, lambda i: replace(i, quarantined=i.quarantined + 1)
            )
        case AgentTrapped(agent=name, replica=replica, kind=kind, reason=reason):
            return _update(
                agents,
                name,
                replica,
                lambda i: replace(
                    i, lifecycle="trapped", traps=i.traps + 1, last_error=f"{kind}: {reason}"
                ),
            )
        case AgentRestarting(agent=name, replica=replica):
            at = recorded.at
            return _update(
                agents,
                name,
                replica,
                lambda i: replace(i, lifecycle="restarting", restarts=(*i.restarts, at)),
            )
        case AgentFailed(agent=name, replica=replica, reason=reason):
            return _update(
                agents, name, replica, lambda i: replace(i, lifecycle="failed", failure=reason)
            )
        case AgentStopped(agent=name):
            agent = agents.get(name)
            if agent is None:
                return agents
            instances = tuple(replace(i, lifecycle="stopped") for i in agent.instances)
            return agents.set(name, replace(agent, status="stopped", instances=instances))
        case AgentRemoved(agent=name):
            return agents.delete(name)
        case AgentReconfigured(agent=name):
            agent = agents.get(name)
            return agents if agent is None else agents.set(name, reconfigure(agent, event))
        case (
            MessageSent()
            | MessageDeadLettered()
            | NodeStarted()
            | NodeStopped()
            | ShardClaimed()
            | ShardReleased()
            | MemberChanged()
        ):
            return agents
        case (
            ToolCalled()
            | ToolReturned()
            | ToolFailed()
            | BreakerOpened()
            | BreakerHalfOpened()
            | BreakerClosed()
        ):
            return agents
        case _:
            assert_never(event)


def handled(agents: Agents, event: MessageHandled) -> Agents:
    """`evolve` for a `MessageHandled`, which the world calls directly: one more handled
    by the instance."""
    name = event.agent
    agent = agents.get(name)
    if agent is None:
        return agents
    replica, instances = event.replica, agent.instances
    if not 0 <= replica < len(instances):
        return agents
    instance = instances[replica]
    counted = _counted(instance, instance.handled + 1)
    if len(instances) == 1:
        return agents.set(name, _with_instances(agent, (counted,)))
    changed = (*instances[:replica], counted, *instances[replica + 1 :])
    return agents.set(name, _with_instances(agent, changed))


def counted(agents: Agents, handlings: Mapping[tuple[str, int], int]) -> Agents:
    """`handled` applied `n` times for each (agent, replica): `n` in `handlings`."""
    changed: dict[str, AgentState] = {}
    for (name, replica), n in handlings.items():
        agent = changed.get(name) or agents.get(name)
        if agent is None or not 0 <= replica < len(agent.instances):
            continue
        instances = list(agent.instances)
        instance = instances[replica]
        instances[replica] = _counted(instance, instance.handled + n)
        changed[name] = _with_instances(agent, tuple(instances))
    return agents.updated(changed)


# The copies a handling makes, generated once (caxton.domain.frozen).
_counted = copier(InstanceState, "handled")
_with_instances = copier(AgentState, "instances")


def _with_instance(
    agent: AgentState, replica: int, change: Callable[[InstanceState], InstanceState]
) -> AgentState:
    if not 0 <= replica < len(agent.instances):
        return agent
    instances = list(agent.instances)
    instances[replica] = change(instances[replica])
    return replace(agent, instances=tuple(instances))


def _update(
    agents: Agents, name: str, replica: int, change: Callable[[InstanceState], InstanceState]
) -> Agents:
    agent = agents.get(name)
    if agent is None:
        return agents
    return agents.set(name, _with_instance(agent, replica, change))


def runs(agent: AgentState, replica: int) -> bool:
    """Whether the node running `agent` runs its instance `replica`: the agent is running
    and the instance has not failed for good (its restarts ran out)."""
    return (
        agent.status == "running"
        and replica < len(agent.instances)
        and agent.instances[replica].lifecycle != "failed"
    )


def health(agent: AgentState) -> Health:
    """How many replicas run, and one line per replica that does not."""
    running = sum(1 for i in agent.instances if i.lifecycle == "running")
    problems = tuple(_problem(i) for i in agent.instances if i.lifecycle != "running")
    return Health(running=running, total=len(agent.instances), problems=problems)


def _problem(instance: InstanceState) -> str:
    line = f"replica {instance.replica} {instance.lifecycle}"
    detail = instance.last_error or instance.failure
    return f"{line}: {detail}" if detail else line


_PENDING: frozenset[Lifecycle] = frozenset({"deployed", "starting", "restarting"})
STARTED: frozenset[str] = frozenset({"deployed", "starting", "running"})
"""Lifecycles of an instance that has not failed to start: running, or on its way with no
error so far (a restarting one has failed once already)."""


def status_line(agent: AgentState) -> str:
    """`✓ Running (3/3 instances healthy)`, `✗ Degraded (…): replica 2 failed: …`, `■ Stopped`."""
    if agent.status != "running":
        return f"■ {agent.status.capitalize()}"
    h = health(agent)
    counts = f"({h.running}/{h.total} instances healthy)"
    if h.running == h.total:
        return f"✓ Running {counts}"
    if all(i.lifecycle in _PENDING or i.lifecycle == "running" for i in agent.instances):
        return f"◌ Starting {counts}"
    if all(i.lifecycle == "failed" for i in agent.instances):
        return f"✗ Failed {counts}: {'; '.join(h.problems)}"
    return f"✗ Degraded {counts}: {'; '.join(h.problems)}"
