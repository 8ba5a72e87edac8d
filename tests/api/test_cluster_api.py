"""`ListMembers`, and the node of each agent in `GetAgent` and `Top`, over a real loopback
socket: a server alone, and a node of a cluster whose log other nodes wrote to."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from grpclib.server import Server

from caxton.client import CaxtonClient, ServerUnavailable
from caxton.domain.events import Event, MemberChanged, NodeStarted, ShardClaimed
from caxton.domain.placement import SHARDS, shard_of
from caxton.shell.api.ops import OpsService
from caxton.shell.api.service import services_for
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.runtime.ports import Ownership
from caxton.shell.store import EventLog, Pending
from caxton.shell.telemetry.live import LiveStats
from caxton.shell.wasm import WasmHost
from tests.support import free_port, wat

# fixed shards (tests/domain/test_membership.py): alice 9, bob 18, order-processor 51
HERE, THERE, SUSPECT = 9, 18, 51


class Holding:
    """A cluster node's ownership without a lease table: the shards it was given."""

    def __init__(self, shards: set[int]) -> None:
        self.shards = shards

    def owns(self, agent: str) -> bool:
        return shard_of(agent) in self.shards

    @property
    def fence(self) -> Mapping[int, int]:
        return {}  # a SQLite log takes no fenced append

    unreachable = ""

    async def hand_over(self) -> None:
        self.shards = set()


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, *, ownership: Ownership | None = None, before: list[Pending] | None = None
) -> AsyncIterator[tuple[Node, CaxtonClient]]:
    """Node `node-a` on a real SQLite file (holding `before` already), behind the API."""
    log = await EventLog.open(str(tmp_path / "events.db"))
    if before:
        await log.append(before)
    host = WasmHost(tmp_path / "components")
    node = Node(
        log=log,
        host=host,
        clock=SystemClock(),
        node_id="node-a",
        address="127.0.0.1:50051",
        ownership=ownership,
    )
    await node.start()
    server = Server([*services_for(node, log), OpsService(node, LiveStats())])
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        async with CaxtonClient(f"127.0.0.1:{port}") as client:
            yield node, client
    finally:
        server.close()
        await server.wait_closed()
        await node.shutdown()
        await log.close()
        host.close()


async def test_a_server_alone_is_not_clustered_and_runs_every_agent(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, client):
        for name in ("bob", "alice"):
            await client.deploy(wat("reply"), name, replicas=2)

        view = await client.members()
        info = await client.agent("alice")
        top = await client.top()
        log = await client.log_info()

    assert (view.node, view.clustered, view.shard_count) == ("node-a", False, SHARDS)
    (me,) = view.members
    assert (me.node, me.address, me.state, me.incarnation) == (
        "node-a",
        "127.0.0.1:50051",
        "alive",
        1,
    )
    assert (me.shards, me.agents) == ((), ("alice", "bob"))
    assert (view.unowned_shards, view.unowned_agents) == ((), ())
    assert view.member == me
    assert [i.node for i in info.instances] == ["node-a", "node-a"]
    assert [(a.name, a.node) for a in top.agents] == [("alice", "node-a"), ("bob", "node-a")]
    assert (log.node, log.last_position > 0) == ("node-a", True)


async def test_a_cluster_node_lists_every_member_its_shards_and_agents(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, client):  # deployed while node-a was alone
        for name in ("alice", "bob", "order-processor", "zed"):
            await client.deploy(wat("reply"), name)
    # then other nodes wrote to the log: node-b holds bob's shard, node-c, suspected by
    # node-b, order-processor's; node-a starts again as a node of their cluster
    others: list[Event] = [
        NodeStarted(node="node-b", address="10.0.0.2:50051", version="0.1.0"),
        NodeStarted(node="node-c", address="10.0.0.3:50051", version="0.1.0"),
        ShardClaimed(shard=THERE, node="node-b", epoch=1, reason="unowned"),
        ShardClaimed(shard=SUSPECT, node="node-c", epoch=1, reason="unowned"),
        MemberChanged(node="node-c", state="suspect", by="node-b"),
    ]
    before = [Pending(event=e, at=1_000 + i) for i, e in enumerate(others)]
    assert shard_of("zed") not in (HERE, THERE, SUSPECT)
    async with serving(tmp_path, ownership=Holding({HERE}), before=before) as (node, client):
        await node.commit([ShardClaimed(shard=HERE, node="node-a", epoch=1, reason="unowned")])

        view = await client.members()
        listed = {a.name: {i.node for i in a.instances} for a in await client.agents()}
        top = await client.top()

    assert (view.node, view.clustered) == ("node-a", True)
    rows = [(m.node, m.address, m.state, m.incarnation, m.shards, m.agents) for m in view.members]
    assert rows == [
        ("node-a", "127.0.0.1:50051", "alive", 2, (HERE,), ("alice",)),
        ("node-b", "10.0.0.2:50051", "alive", 1, (THERE,), ("bob",)),
        ("node-c", "10.0.0.3:50051", "suspect", 1, (SUSPECT,), ("order-processor",)),
    ]
    assert view.unowned_shards == tuple(s for s in range(SHARDS) if s not in (HERE, THERE, SUSPECT))
    assert view.unowned_agents == ("zed",)
    assert listed == {
        "alice": {"node-a"},
        "bob": {"node-b"},
        "order-processor": {"node-c"},
        "zed": {""},  # no node holds its shard
    }
    assert {a.name: a.node for a in top.agents} == {
        "alice": "node-a",
        "bob": "node-b",
        "order-processor": "node-c",
        "zed": "",
    }


async def test_a_cluster_node_that_cannot_reach_the_shared_log_refuses_new_work_plainly(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (_, client):
        await client.deploy(wat("reply"), "alice")
    cut_off = Holding({HERE})  # alice's shard
    async with serving(tmp_path, ownership=cut_off) as (_, client):
        cut_off.unreachable = "no answer since 04:35:40 UTC: timed out"
        with pytest.raises(ServerUnavailable) as refused:
            await client.send("alice", "inform", {"n": 1})
        cut_off.unreachable = ""  # it answers again: work is taken again
        await client.send("alice", "inform", {"n": 2})
    said = str(refused.value)
    assert "node node-a cannot reach the shared log (no answer since 04:35:40 UTC" in said
    assert "send through another node" in said
