"""Routing: which instances (or clients) a message goes to, and which receivers dead-letter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.agents import AVAILABLE, Agents, AgentState
from caxton.domain.frozen import positional
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.ids import CAPABILITY_PREFIX, instance_key, is_capability, is_client

# Round-robin counters: by agent name (which replica) and by `capability:C` (which agent).
RouteCursor = FrozenMap[str, int]
NO_CURSOR: RouteCursor = FrozenMap()


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    deliveries: tuple[str, ...] = ()
    dead_letters: tuple[tuple[str, str], ...] = ()
    cursor: RouteCursor = NO_CURSOR


def route(message: AclMessage, agents: Agents, cursor: RouteCursor = NO_CURSOR) -> Route:
    """Resolves every receiver once; the cursor it returns continues the round-robin."""
    receivers = message.receivers
    if len(receivers) == 1:  # most messages: one agent by name, with one replica
        agent = agents.get(receivers[0])
        if agent is not None and agent.status == "running" and len(agent.instances) == 1:
            only = agent.instances[0]
            if only.lifecycle in AVAILABLE:
                return _route((instance_key(agent.name, only.replica),), (), cursor)
    deliveries: list[str] = []
    dead: list[tuple[str, str]] = []
    for receiver in dict.fromkeys(message.receivers):
        if is_client(receiver):
            deliveries.append(receiver)
        elif is_capability(receiver):
            capability = receiver.removeprefix(CAPABILITY_PREFIX)
            keys, cursor, reason = _to_capability(
                capability, agents, cursor, broadcast=message.performative == Performative.CFP
            )
            deliveries.extend(keys)
            if reason:
                dead.append((receiver, reason))
        else:
            agent = agents.get(receiver)
            if agent is None:
                dead.append((receiver, f"no agent named {receiver}"))
            elif agent.status != "running":
                dead.append((receiver, f"agent {receiver} is {agent.status}"))
            else:
                key, cursor = _one_replica(agent, cursor)
                if key is None:
                    dead.append((receiver, f"agent {receiver} has failed"))
                else:
                    deliveries.append(key)
    return Route(
        deliveries=tuple(dict.fromkeys(deliveries)), dead_letters=tuple(dead), cursor=cursor
    )


def _available(agent: AgentState) -> list[int]:
    return [i.replica for i in agent.instances if i.lifecycle in AVAILABLE]


def _one_replica(agent: AgentState, cursor: RouteCursor) -> tuple[str | None, RouteCursor]:
    if len(agent.instances) == 1:  # one replica: no turn to take, the cursor stays as it is
        only = agent.instances[0]
        key = instance_key(agent.name, only.replica) if only.lifecycle in AVAILABLE else None
        return key, cursor
    replicas = _available(agent)
    if not replicas:
        return None, cursor
    turn = cursor.get(agent.name, 0)
    chosen = replicas[turn % len(replicas)]
    return instance_key(agent.name, chosen), cursor.set(agent.name, turn + 1)


def _to_capability(
    capability: str, agents: Agents, cursor: RouteCursor, *, broadcast: bool
) -> tuple[list[str], RouteCursor, str]:
    # Sorted, so that the round-robin is the same in every process that folds the log.
    declaring = sorted(
        (a for a in agents.values() if capability in a.capabilities), key=lambda a: a.name
    )
    if not declaring:
        return [], cursor, f"no agent has capability {capability}"
    ready = [a for a in declaring if a.status == "running" and _available(a)]
    if not ready:
        return [], cursor, f"no running agent has capability {capability}"
    if not broadcast:
        key = CAPABILITY_PREFIX + capability
        turn = cursor.get(key, 0)
        ready = [ready[turn % len(ready)]]
        cursor = cursor.set(key, turn + 1)
    keys: list[str] = []
    for agent in ready:
        chosen, cursor = _one_replica(agent, cursor)
        if chosen is not None:
            keys.append(chosen)
    return keys, cursor, ""


# Route(...) without the frozen __init__: one per message routed
_route: Callable[[tuple[str, ...], tuple[tuple[str, str], ...], RouteCursor], Route] = positional(
    Route
)
