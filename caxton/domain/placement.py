"""Where an agent runs in a cluster: its shard, by a stable hash of its name.

The number of shards is fixed for the life of a cluster (every node must agree on it,
and the log's leases are per shard); which node holds a shard is decided by a fenced
claim in the shared log, never here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

SHARDS = 64
"""Shards of a cluster's agents: enough to spread over tens of nodes, few enough that
renewing every lease a node holds is one statement a second."""


def shard_of(agent: str, shards: int = SHARDS) -> int:
    """The agent's shard: the same on every node, in every process and every release
    (a BLAKE2b digest of the name, never Python's salted `hash`)."""
    digest = hashlib.blake2b(agent.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseView:
    """A shard's lease as the lease table last said: `owner` "" when it never had one,
    `expires_in_s` negative once it ran out (minus infinity: released)."""

    shard: int
    owner: str
    epoch: int
    expires_in_s: float

    @property
    def free(self) -> bool:
        return not self.owner or self.expires_in_s <= 0

    @property
    def why_free(self) -> str:
        """Why a claim may take it (`ShardClaimed.reason`): "unowned", "released" by its
        holder, or "expired" (its holder stopped renewing it)."""
        if not self.owner:
            return "unowned"
        return "released" if self.expires_in_s == -math.inf else "expired"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a node does with leases at one tick: shards to claim, shards to give up."""

    claim: tuple[int, ...] = ()
    release: tuple[int, ...] = ()
    rescued: tuple[int, ...] = ()
    """The claims beyond the node's share: shards left to nobody for `patience_s`."""


def fair_share(live: int, shards: int = SHARDS) -> int:
    """Shards each of `live` nodes should hold, rounded up (so that all are held)."""
    return -(-shards // max(live, 1))


def plan(
    node: str,
    leases: Mapping[int, LeaseView],
    held: Collection[int],
    *,
    live: int,
    orphaned_for: Mapping[int, float],
    patience_s: float,
    rescued: Collection[int] = (),
) -> Plan:
    """Which free shards `node` claims and which held ones it gives up, given `live`
    nodes in the cluster (the failure detector's count: a hint).

    A node claims free shards up to its fair share, and any shard that has been free for
    `patience_s` whatever its share (availability first: a wrong count of live nodes may
    leave a shard to nobody, never for long). It gives up what it holds beyond its share
    plus one (the one keeps shards from moving back and forth when the count wobbles),
    except those it `rescued` (claimed beyond its share after they were left to nobody)
    while the count stays the same: whoever the count includes beyond the nodes holding
    shards is not claiming any (a dead node the failure detector has not declared yet),
    so giving them up would only leave them to nobody again, and again.
    Nodes prefer different shards (rendezvous order), so their claims seldom collide; a
    claim that loses the race is refused by the lease table, never granted twice."""
    share = fair_share(live, max(len(leases), 1))
    mine = set(held)
    free = sorted(
        (s for s, lease in leases.items() if s not in mine and lease.free),
        key=lambda s: _preference(node, s),
    )
    room = max(0, share - len(mine))
    beyond = tuple(s for s in free[room:] if orphaned_for.get(s, 0.0) >= patience_s)
    release: list[int] = []
    counted = mine - set(rescued)  # the rescued do not count against the share
    if len(counted) > share + 1:
        least_wanted = sorted(counted, key=lambda s: _preference(node, s), reverse=True)
        release = least_wanted[: len(counted) - share]
    return Plan((*free[:room], *beyond), tuple(release), beyond)


def _preference(node: str, shard: int) -> bytes:
    """Rendezvous hashing: each node ranks the shards in an order of its own."""
    return hashlib.blake2b(f"{node}\x00{shard}".encode(), digest_size=8).digest()
