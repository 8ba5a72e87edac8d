"""Which node of a cluster made each step of a conversation, and when a shard changed hands.

A cluster's node stamps every event it commits (`Recorded.node`), which says it for every
step, a client's send included. A log without stamps (written before they were) still
says it for the steps that depend on a shard: such appends (a handling, an instance
started, trapped or restarted, what an agent sends or calls while handling) are fenced by
the shard's lease epoch, so the node that made one is the holder of the agent's shard at
that position of the log. Outside a cluster the log holds no claim and no stamp, and no
step names a node.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from caxton.domain.cluster_audit import acting_agent
from caxton.domain.events import (
    Recorded,
    ShardClaimed,
    ShardReleased,
)
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.ids import PLATFORM, is_client
from caxton.domain.placement import shard_of
from caxton.domain.protocols import agent_of

Holders = FrozenMap[int, str]
"""Each held shard's node, as the log said up to some position."""

NO_HOLDERS: Holders = FrozenMap()

REASONS = {"expired": "lease expired", "released": "released", "unowned": "unowned"}
"""`ShardClaimed.reason` in an operator's words."""


def is_shard_event(recorded: Recorded) -> bool:
    return isinstance(recorded.event, ShardClaimed | ShardReleased)


def holders_after(holders: Holders, recorded: Recorded) -> Holders:
    """The holders once `recorded` is applied (a claim moves its shard, a release frees it)."""
    event = recorded.event
    match event:
        case ShardClaimed(shard=shard, node=node):
            return holders.set(shard, node)
        case ShardReleased(shard=shard, node=node) if holders.get(shard) == node:
            return holders.delete(shard)
        case _:
            return holders


def holders_of(history: Iterable[Recorded], shards: Iterable[int] | None = None) -> Holders:
    """Who held each shard (or only `shards`) after `history`, in log order."""
    wanted = None if shards is None else frozenset(shards)
    holders = NO_HOLDERS
    for recorded in sorted(history, key=lambda r: r.position):
        event = recorded.event
        if isinstance(event, ShardClaimed | ShardReleased) and (
            wanted is None or event.shard in wanted
        ):
            holders = holders_after(holders, recorded)
    return holders


def node_of(recorded: Recorded, holders: Holders) -> str:
    """The node that made this step: its stamp, else the holder of the shard that fenced
    it, with `holders` as the log said just before it; "" when the log does not say
    (outside a cluster; an unstamped client's send)."""
    event = recorded.event
    if recorded.node:
        return recorded.node
    if isinstance(event, ShardClaimed | ShardReleased):
        return event.node
    agent = acting_agent(event)
    return holders.get(shard_of(agent), "") if agent else ""


def step_nodes(holders: Holders, events: Sequence[Recorded]) -> tuple[str, ...]:
    """The node of each of `events` (a recording's steps, in log order), starting from
    `holders` just before the first."""
    nodes: list[str] = []
    for recorded in events:
        holders = holders_after(holders, recorded)
        nodes.append(node_of(recorded, holders))
    return tuple(nodes)


def takeover_text(claim: ShardClaimed) -> str:
    """`shard 17  n0 → n1 (lease expired, epoch 4)`."""
    return f"shard {claim.shard}  {takeover_arrow(claim)} ({takeover_reason(claim)})"


def takeover_arrow(claim: ShardClaimed) -> str:
    return f"{claim.previous or '—'} → {claim.node}"


def takeover_reason(claim: ShardClaimed) -> str:
    return f"{REASONS.get(claim.reason, claim.reason or 'claimed')}, epoch {claim.epoch}"


def on_shard(shard: int, names: Iterable[str]) -> tuple[str, ...]:
    """The agents among `names` placed on `shard`, in their order (clients are on none)."""
    return tuple(
        n for n in names if not is_client(n) and n != PLATFORM and shard_of(agent_of(n)) == shard
    )
