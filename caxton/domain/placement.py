"""Where an agent runs in a cluster: its shard, by a stable hash of its name.

The number of shards is fixed for the life of a cluster (every node must agree on it,
and the log's leases are per shard); which node holds a shard is decided by a fenced
claim in the shared log, never here.
"""

from __future__ import annotations

import hashlib

SHARDS = 64
"""Shards of a cluster's agents: enough to spread over tens of nodes, few enough that
renewing every lease a node holds is one statement a second."""


def shard_of(agent: str, shards: int = SHARDS) -> int:
    """The agent's shard: the same on every node, in every process and every release
    (a BLAKE2b digest of the name, never Python's salted `hash`)."""
    digest = hashlib.blake2b(agent.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards
