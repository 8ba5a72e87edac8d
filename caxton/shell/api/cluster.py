"""The gRPC ClusterService (proto/caxton/v1/cluster.proto): `caxton cluster members|status`."""

from __future__ import annotations

from caxton.domain.placement import SHARDS
from caxton.domain.roster import Placement, Rostered, placement, roster
from caxton.shell.api.generated.caxton import v1
from caxton.shell.runtime.node import Node


class ClusterService(v1.ClusterServiceBase):
    """Reads the node's fold of the log; changes nothing."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def list_members(self, message: v1.ListMembersRequest) -> v1.ListMembersReply:
        world = self.node.world
        seen = roster(
            world.membership, world.agents, here=self.node.node_id, clustered=clustered(self.node)
        )
        return v1.ListMembersReply(
            members=[_member(m) for m in seen.members],
            node=seen.here,
            clustered=seen.clustered,
            shard_count=SHARDS,
            unowned_shards=list(seen.unowned_shards),
            unowned_agents=list(seen.unowned_agents),
        )


def clustered(node: Node) -> bool:
    """Whether the node is one of a cluster's (started with --cluster): it then runs only
    the agents on the shards it holds."""
    return node.ownership is not None


def placement_of(node: Node) -> Placement:
    """Where each agent runs, by the node's fold of the log."""
    return placement(node.world.membership, here=node.node_id, clustered=clustered(node))


def _member(rostered: Rostered) -> v1.MemberInfo:
    member = rostered.member
    return v1.MemberInfo(
        node=member.node,
        address=member.address,
        state=member.status,
        incarnation=member.incarnation,
        version=member.version,
        since_ms=member.since,
        shards=sorted(member.shards),
        agents=list(rostered.agents),
    )
