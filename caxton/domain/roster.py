"""Who runs what: each node's shards and agents, as the log last said (`caxton cluster`).

Outside a cluster no node holds a shard and the node answering runs every agent; in a
cluster an agent runs on the holder of its shard's lease, and on no node while the lease
is free (its agents wait for a claim).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from caxton.domain.membership import Member, Membership
from caxton.domain.placement import SHARDS, shard_of


@dataclass(frozen=True, slots=True)
class Placement:
    """Which node runs an agent, as seen from node `here`."""

    here: str
    clustered: bool
    holders: Mapping[int, str]
    """Each held shard's node (empty outside a cluster)."""

    def node_of(self, agent: str) -> str:
        """The node running `agent`: `here` outside a cluster, else its shard's holder
        ("" while no node holds it)."""
        if not self.clustered:
            return self.here
        return self.holders.get(shard_of(agent), "")


def placement(members: Membership, *, here: str, clustered: bool) -> Placement:
    """Agents placed by the leases `members` hold. Outside a cluster the node answering
    runs every agent, whatever shards the log still shows from a past run as a cluster."""
    holders = {shard: m.node for m in members.values() for shard in m.shards} if clustered else {}
    return Placement(here, clustered, MappingProxyType(holders))


@dataclass(frozen=True, slots=True)
class Rostered:
    """One node and the agents it runs, sorted."""

    member: Member
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Roster:
    """Every node the log knows of, by id, with what it runs, and what nobody runs."""

    here: str
    clustered: bool
    members: tuple[Rostered, ...]
    unowned_shards: tuple[int, ...]
    """Shards whose lease no node holds (none outside a cluster)."""
    unowned_agents: tuple[str, ...]
    """Agents on those shards, sorted: they run nowhere until a node claims one."""


def roster(members: Membership, agents: Iterable[str], *, here: str, clustered: bool) -> Roster:
    """The roster of `members` running `agents` (the names deployed), seen from `here`."""
    placed = placement(members, here=here, clustered=clustered)
    running: dict[str, list[str]] = {}
    for agent in sorted(agents):
        running.setdefault(placed.node_of(agent), []).append(agent)
    unowned = tuple(s for s in range(SHARDS) if s not in placed.holders) if clustered else ()
    return Roster(
        here=here,
        clustered=clustered,
        members=tuple(
            Rostered(members[node], tuple(running.get(node, ()))) for node in sorted(members)
        ),
        unowned_shards=unowned,
        unowned_agents=tuple(running.get("", ())) if clustered else (),
    )
