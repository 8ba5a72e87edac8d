"""Partitions of a 3-node cluster in network namespaces: nodes cut from each other keep
working through the log; a node cut from PostgreSQL refuses work, is not ready, and its
shards move; every cut heals with no manual step (`tests/cluster/netns.py` makes the cuts).

Each test prints what it measured (`MEASURED ...`; run with -s to see it)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from caxton.client import CaxtonClient, CaxtonError, DeadlineExceeded, InvokeTimeout
from caxton.domain.events import MemberChanged, Recorded, ShardClaimed
from caxton.domain.placement import SHARDS, fair_share, shard_of
from caxton.shell.store import EventLog
from tests.cluster.checker import assert_log_sound, now_ms
from tests.cluster.netns import Host, Network, network
from tests.store.conftest import postgres_schema
from tests.support import wat

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.cluster]

T = TypeVar("T")

LEASE_S = 3  # a takeover within a few seconds of a lease running out (tests that cut PostgreSQL)
API_PORT, HEALTH_PORT, GOSSIP_PORT = 50051, 8081, 7946  # each namespace has its own ports
START_S = 120  # a server's start on a busy 2-core machine
WAIT_S = 120  # any convergence: gossip verdicts (10-25 s), takeovers, rejoins
INVOKE_S = 30  # the reply wait of an invoke; the client's deadline is 30 s more
HELD_AGAIN_S = 30  # every shard held again after a cut: a lease, a tick, a busy machine


@dataclass
class Node:
    """`caxton server start` in a namespace; its stdout and stderr go to `output`."""

    id: str
    host: Host
    data_dir: Path
    output: Path
    process: subprocess.Popen[str] | None = None

    @property
    def api(self) -> str:
        return f"{self.host.control_address}:{API_PORT}"

    @property
    def gossip(self) -> str:
        return f"{self.host.peer_address}:{GOSSIP_PORT}"

    def start(self, net: Network, *flags: str) -> None:
        argv = [sys.executable, "-m", "caxton", "server", "start", "--data-dir"]
        argv += [str(self.data_dir), "--listen", self.api, "--log-level", "INFO"]
        argv += ["--health", f"{self.host.control_address}:{HEALTH_PORT}", "--metrics", "off"]
        argv += ["--rest", "off"]
        with self.output.open("a") as out:
            self.process = net.popen(self.host, [*argv, *flags], out)
        deadline = time.monotonic() + START_S
        while "listening on" not in self.output.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.id} did not start:\n{self.tail()}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 80) -> str:
        text = self.output.read_text() if self.output.exists() else ""
        status = (
            "running" if self.running() else f"exited ({self.process and self.process.returncode})"
        )
        return f"--- {self.id}, {status}, last lines of its output ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    async def ready(self) -> tuple[int, dict[str, object]]:
        """/ready's status and body (0 and the error when nothing answers)."""
        url = f"http://{self.host.control_address}:{HEALTH_PORT}/ready"

        def get() -> tuple[int, dict[str, object]]:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as refused:
                return refused.code, json.loads(refused.read() or b"{}")
            except OSError as e:
                return 0, {"error": str(e)}

        return await asyncio.to_thread(get)


@dataclass
class Cluster:
    net: Network
    nodes: list[Node]
    store: str
    workdir: Path
    acknowledged: list[str] = field(default_factory=list)
    """Ids of the messages the nodes acknowledged to the test."""

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def tails(self) -> str:
        return "\n".join(node.tail() for node in self.nodes)


@pytest.fixture
def store() -> Iterator[str]:
    with postgres_schema("caxton_partitions") as url:
        yield url


@pytest.fixture
def lease_s() -> int:
    return LEASE_S


@pytest.fixture
def cluster(tmp_path: Path, store: str, lease_s: int) -> Iterator[Cluster]:
    """Three nodes, n0 to n2, one per namespace, gossiping on their peers' bridge (with a
    key: plaintext gossip is for loopback only) and reaching PostgreSQL by the forwarder."""
    key = base64.b64encode(os.urandom(32)).decode()
    with network(3, store) as net:
        nodes = [
            Node(f"n{h.index}", h, tmp_path / f"n{h.index}", tmp_path / f"n{h.index}.out")
            for h in net.hosts
        ]
        made = Cluster(net, nodes, store, tmp_path)
        try:
            for node in nodes:
                seeds = ("--seeds", nodes[0].gossip) if node is not nodes[0] else ()
                node.start(
                    net,
                    *("--store", node.host.postgres_url, "--cluster", "partitions"),
                    *("--gossip", node.gossip, "--cluster-key", key, *seeds),
                    *("--node-id", node.id, "--lease", str(lease_s)),
                )
            yield made
        finally:
            print(made.tails())  # shown by pytest when the test failed
            for node in nodes:
                if node.running():
                    assert node.process is not None
                    node.process.kill()
                    node.process.wait(timeout=30)


# --- waiting and asking ----------------------------------------------------------


async def until(
    what: str, check: Callable[[], Awaitable[T | None]], cluster: Cluster, within_s: float = WAIT_S
) -> T:
    """Polls `check` (a bound, as nothing announces these outcomes) until it gives a
    truthy value; fails saying what did not happen, with the nodes' output."""
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s\n{cluster.tails()}")
        await asyncio.sleep(0.25)


async def reply_from(cluster: Cluster, node: Node, agent: str) -> str | None:
    """The replying agent's name when `agent` answers through `node`, else None; the
    message's id is kept among the cluster's acknowledged sends (for the log checker)."""
    try:
        async with CaxtonClient(node.api, timeout=20) as client:
            sent = await client.send(
                agent, "request", {"ping": 1}, protocol="fipa-request", wait_ms=10_000
            )
    except CaxtonError:
        return None
    cluster.acknowledged.append(sent.message_id)
    return sent.reply.sender if sent.reply is not None else None


async def all_answer(cluster: Cluster, agents: list[str], through: list[Node]) -> None:
    for node in through:
        for agent in agents:

            async def answered(node: Node = node, agent: str = agent) -> str | None:
                return await reply_from(cluster, node, agent)

            assert await until(f"{agent} answers through {node.id}", answered, cluster) == agent


@dataclass
class Log:
    """The cluster's log, read by the test directly (not through the forwarder)."""

    log: EventLog

    async def since(self, position: int) -> list[Recorded]:
        return await self.log.read(from_position=position + 1)

    async def last(self) -> int:
        return await self.log.last_position()

    async def owners(self) -> dict[int, str]:
        """Each shard's owner while its lease runs ("" for none)."""
        leases = await self.log.leases()
        return {s: (lease.owner if lease.expires_in_s > 0 else "") for s, lease in leases.items()}

    async def claims(self, since: int = 0) -> list[ShardClaimed]:
        return [r.event for r in await self.since(since) if isinstance(r.event, ShardClaimed)]

    async def verdicts(self, since: int) -> list[MemberChanged]:
        return [r.event for r in await self.since(since) if isinstance(r.event, MemberChanged)]


@pytest.fixture
async def log(store: str) -> AsyncIterator[Log]:
    opened = await EventLog.open(store, shared=True)
    try:
        yield Log(opened)
    finally:
        await opened.close()


async def settled(log: Log, cluster: Cluster) -> dict[int, str]:
    """Waits until every shard is held, by all three nodes, none beyond its share + 1
    (where the placement plan stops moving shards); returns the owners."""
    share = fair_share(len(cluster.nodes))

    async def placement() -> dict[int, str] | None:
        owners = await log.owners()
        counts = {n.id: list(owners.values()).count(n.id) for n in cluster.nodes}
        held = len(owners) == SHARDS and "" not in owners.values()
        even = all(0 < c <= share + 1 for c in counts.values())
        return owners if held and even else None

    return await until("every shard held, spread over the three nodes", placement, cluster)


async def unchanged_for(seconds: float, log: Log, owners: dict[int, str], cluster: Cluster) -> None:
    """Watches the lease table for `seconds` (nothing announces that nothing moved):
    every shard keeps its owner."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = await log.owners()
        moved = {s: (owners[s], now[s]) for s in owners if now.get(s) != owners[s]}
        assert not moved, f"shards moved (was, now): {moved}\n{cluster.tails()}"
        await asyncio.sleep(0.25)


async def deploy_one_per_node(cluster: Cluster, owners: dict[int, str]) -> dict[str, str]:
    """Deploys an echo agent on a shard of each node (through n0); node id → agent."""
    agents: dict[str, str] = {}
    for k in range(10_000):
        agents.setdefault(owners[shard_of(f"echo-{k}")], f"echo-{k}")
        if len(agents) == len(cluster.nodes):
            break
    async with CaxtonClient(cluster.nodes[0].api) as client:
        for agent in agents.values():
            await client.deploy(wat("reply"), name=agent)
    return agents


def measured(what: str, seconds: float) -> None:
    print(f"MEASURED {what}: {seconds:.1f} s")


async def assert_log_sound_after(
    cluster: Cluster, *, cut_ms: int | None = None, gone: frozenset[str] = frozenset()
) -> None:
    """The log checker, run after every fault: for a node cut from PostgreSQL (`gone`,
    from `cut_ms`), its shards must be held by the others within HELD_AGAIN_S."""
    report = await assert_log_sound(
        cluster.store,
        cluster.nodes[0].api,
        cluster.workdir / "check",
        settled_after_ms=cut_ms,
        gone=gone,
        within_s=HELD_AGAIN_S,
        acknowledged=cluster.acknowledged,
    )
    print(f"checked: {report.summary}; {report.replayed} conversations replayed identically")


# --- the tests -----------------------------------------------------------------


# the default lease: nothing is to move, and a 1 s renewal bound lapses now and then
# with 9 servers on 2 busy cores
@pytest.mark.parametrize("lease_s", [10])
async def test_nodes_cut_from_each_other_but_not_from_postgres_keep_working(
    cluster: Cluster, log: Log, lease_s: int
) -> None:
    owners = await settled(log, cluster)
    agents = await deploy_one_per_node(cluster, owners)
    await all_answer(cluster, list(agents.values()), cluster.nodes)
    claims = await log.claims()
    alone, others = cluster.nodes[2], cluster.nodes[:2]

    mark = await log.last()
    cut = time.monotonic()
    cluster.net.cut_peers(alone.host)

    async def both_sides_dead() -> list[MemberChanged] | None:
        seen = await log.verdicts(mark)
        by_others = {v.by for v in seen if v.node == alone.id and v.state == "dead"}
        by_alone = {v.node for v in seen if v.by == alone.id and v.state == "dead"}
        whole = by_others == by_alone == {n.id for n in others}
        return seen if whole else None

    seen = await until("each side records the other dead", both_sides_dead, cluster)
    measured("peers cut -> both sides' dead verdicts recorded", time.monotonic() - cut)
    assert {v.state for v in seen} <= {"suspect", "dead"}, seen
    # a dead verdict is a hint: no lease lapses, every node keeps its agents
    await unchanged_for(2 * lease_s, log, owners, cluster)
    await all_answer(cluster, list(agents.values()), cluster.nodes)
    assert await log.owners() == owners
    assert await log.claims() == claims

    healed = await log.last()
    heal = time.monotonic()
    cluster.net.heal_peers()

    async def alive_again() -> bool:
        seen = await log.verdicts(healed)
        by_others = {v.by for v in seen if v.node == alone.id and v.state == "alive"}
        by_alone = {v.node for v in seen if v.by == alone.id and v.state == "alive"}
        return by_others == by_alone == {n.id for n in others}

    await until("each side records the other alive again", alive_again, cluster)
    measured("peers healed -> both sides' alive verdicts recorded", time.monotonic() - heal)
    await all_answer(cluster, list(agents.values()), cluster.nodes)
    assert await log.owners() == owners
    assert await log.claims() == claims  # no shard changed hands, at the cut or the heal
    assert all(node.running() for node in cluster.nodes), cluster.tails()
    await assert_log_sound_after(cluster)


async def test_a_node_cut_from_postgres_refuses_work_and_its_shards_move_until_it_heals(
    cluster: Cluster, log: Log
) -> None:
    await a_node_cut_from_postgres(cluster, log, from_peers_too=False)


async def test_a_node_cut_from_everything_loses_its_shards_and_rejoins_when_healed(
    cluster: Cluster, log: Log
) -> None:
    await a_node_cut_from_postgres(cluster, log, from_peers_too=True)


async def a_node_cut_from_postgres(cluster: Cluster, log: Log, *, from_peers_too: bool) -> None:
    owners = await settled(log, cluster)
    agents = await deploy_one_per_node(cluster, owners)
    await all_answer(cluster, list(agents.values()), cluster.nodes)
    victim, others = cluster.nodes[2], cluster.nodes[:2]
    its_shards = {shard for shard, owner in owners.items() if owner == victim.id}

    mark = await log.last()
    cut, cut_ms = time.monotonic(), now_ms()
    cluster.net.cut_postgres(victim.host)
    if from_peers_too:
        cluster.net.cut_peers(victim.host)

    # new work through it is refused, saying why, long before the client's deadline
    for agent in (agents[victim.id], agents[others[0].id]):
        asked = time.monotonic()
        with pytest.raises(CaxtonError) as refused:
            async with CaxtonClient(victim.api) as client:
                await client.invoke(agent, {"ping": 1}, timeout=INVOKE_S)
        measured(f"send to {agent} through the cut node -> refused", time.monotonic() - asked)
        print(f"  refused with {type(refused.value).__name__}: {refused.value}")
        why = f"{type(refused.value).__name__}: {refused.value}\n{victim.tail()}"
        assert not isinstance(refused.value, DeadlineExceeded | InvokeTimeout), why
        assert re.search(r"\blog\b", str(refused.value)), why
    measured("cut -> new work refused", time.monotonic() - cut)

    async def not_ready() -> dict[str, object] | None:
        status, body = await victim.ready()
        return body if status == 503 else None

    body = await until(f"{victim.id}'s /ready says 503", not_ready, cluster)
    assert body.get("ready") is False and body.get("reason"), body
    measured("cut -> /ready 503", time.monotonic() - cut)

    async def taken_over() -> list[ShardClaimed] | None:
        taken = [c for c in await log.claims(mark) if c.shard in its_shards]
        return taken if {c.shard for c in taken} == its_shards else None

    taken = await until(f"{victim.id}'s shards claimed by the others", taken_over, cluster)
    assert {c.node for c in taken} <= {n.id for n in others}, taken
    measured(
        f"cut -> all {len(its_shards)} of its shards claimed elsewhere", time.monotonic() - cut
    )
    await all_answer(cluster, list(agents.values()), others)  # the others keep working
    if from_peers_too:

        async def declared() -> bool:
            seen = await log.verdicts(mark)
            by = {v.by for v in seen if v.node == victim.id and v.state in ("suspect", "dead")}
            return by == {n.id for n in others}

        await until(f"the others record {victim.id} suspect or dead", declared, cluster)
    assert victim.running(), f"{victim.id} must wait for the log, not exit\n{victim.tail()}"

    healed = await log.last()
    heal = time.monotonic()
    cluster.net.heal_postgres(victim.host)
    if from_peers_too:
        cluster.net.heal_peers()

    async def ready() -> bool:
        status, _ = await victim.ready()
        return status == 200

    await until(f"{victim.id}'s /ready says 200 again", ready, cluster)
    measured("heal -> /ready 200", time.monotonic() - heal)

    async def claims_again() -> bool:
        return any(c.node == victim.id for c in await log.claims(healed))

    await until(f"{victim.id} claims shards again", claims_again, cluster)
    measured("heal -> it claims shards again", time.monotonic() - heal)
    await settled(log, cluster)
    await all_answer(cluster, list(agents.values()), cluster.nodes)
    measured(
        "heal -> converged (placement settled, every agent through every node)",
        time.monotonic() - heal,
    )
    assert all(node.running() for node in cluster.nodes), cluster.tails()
    await assert_log_sound_after(cluster, cut_ms=cut_ms, gone=frozenset({victim.id}))
