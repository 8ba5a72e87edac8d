"""Nodes of a cluster in one process, on one shared PostgreSQL log: agents run where their
shard's lease is held, messages cross nodes through the log, a deposed node stops."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    AgentDeployed,
    MemberChanged,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    ShardClaimed,
)
from caxton.domain.placement import SHARDS, shard_of
from caxton.shell.cluster.leases import LeaseKeeper
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.errors import LogFailed
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog, LeaseLost
from caxton.shell.wasm import WasmHost
from tests.store.conftest import POSTGRES_URL, _require_postgres
from tests.support import wat

pytestmark = pytest.mark.postgres

LEASE_S = 2.0  # short leases: a takeover within seconds


@dataclass
class Member:
    node: Node
    keeper: LeaseKeeper
    log: EventLog
    host: WasmHost

    async def stop(self, *, crash: bool = False) -> None:
        """A clean stop (leases given up), or a crash (leases left to run out)."""
        if crash:
            assert self.keeper._task is not None
            self.keeper._task.cancel()
            self.keeper.held.clear()  # nothing renewed, nothing released
        await self.node.shutdown()
        if not crash:
            await self.keeper.stop()
        await self.log.close()
        self.host.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Callable[[str, int], asyncio.Future[Member]]]:
    _require_postgres()
    schema = f"caxton_cluster_{uuid.uuid4().hex[:12]}"
    url = f"{POSTGRES_URL}?schema={schema}"
    members: list[Member] = []

    async def join(name: str, live: int) -> Member:
        log = await EventLog.open(url, shared=True, origin=name)
        host = WasmHost(tmp_path / name / "components")  # each its own: shared through the log
        keeper = LeaseKeeper(log, name, SystemClock(), live=lambda: live, lease_s=LEASE_S)
        node = Node(log=log, host=host, clock=SystemClock(), node_id=name, ownership=keeper)
        await node.start()
        keeper.start(node)
        member = Member(node, keeper, log, host)
        members.append(member)
        return member

    def joining(name: str, live: int) -> asyncio.Future[Member]:
        return asyncio.ensure_future(join(name, live))

    yield joining
    for member in members:
        with contextlib.suppress(Exception):
            await member.stop()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Waits for `check` to hold, looking after each event-loop turn of 50 ms."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)
    assert check(), what


def request(to: str) -> AclMessage:
    return AclMessage(
        id="",
        performative=Performative.REQUEST,
        sender="",
        receivers=(to,),
        content="{}",
        protocol="fipa-request",
    )


async def test_an_agent_runs_on_its_shard_s_holder_and_answers_a_client_of_another_node(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a, b = await two_nodes(cluster)
    # an agent of each node's: deploy both on node-a, send from the other node
    names = {}
    for name in (f"echo-{i}" for i in range(64)):
        owner = "node-a" if shard_of(name) in a.keeper.held else "node-b"
        names.setdefault(owner, name)
        if len(names) == 2:
            break
    for name in names.values():
        await a.node.deploy(DeploySpec(name=name, component=wat("reply")))
    for owner, name in names.items():
        runs, other = (a, b) if owner == "node-a" else (b, a)
        key, actors = f"{name}#0", runs.node.actors
        await until(lambda: key in actors, f"{owner} runs {name}")  # noqa: B023 (awaited here)
        assert f"{name}#0" not in other.node.actors
        result = await other.node.send(request(name), wait_ms=20_000)
        assert result.reply is not None and result.reply.sender == name
        history = await a.log.read(conversation_id=result.conversation_id)
        assert [type(r.event) for r in history].count(MessageHandled) == 1
    # both nodes fold the same world: one order
    await until(lambda: a.node.world.position == b.node.world.position, "the same position")
    assert a.node.world.agents.keys() == b.node.world.agents.keys()


async def test_a_crashed_node_s_shards_are_taken_over_and_its_agent_answers_again(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a = await cluster("node-a", 2)
    b = await cluster("node-b", 2)
    await until(lambda: len(a.keeper.held) + len(b.keeper.held) == SHARDS, "all held")
    name = next(f"echo-{i}" for i in range(64) if shard_of(f"echo-{i}") in a.keeper.held)
    await b.node.deploy(DeploySpec(name=name, component=wat("reply")))
    await until(lambda: f"{name}#0" in a.node.actors, "node-a runs it")
    first = await b.node.send(request(name), wait_ms=20_000)
    assert first.reply is not None

    await a.stop(crash=True)  # its leases are left to run out
    await until(lambda: len(b.keeper.held) == SHARDS, "node-b holds every shard", 30)
    await until(lambda: f"{name}#0" in b.node.actors, "node-b runs the agent now")
    again = await b.node.send(request(name), wait_ms=20_000)
    assert again.reply is not None and again.reply.sender == name
    claims = [
        r.event
        for r in await b.log.read()
        if isinstance(r.event, ShardClaimed) and r.event.shard == shard_of(name)
    ]
    assert [(c.node, c.epoch, c.reason) for c in claims][-1] == ("node-b", 2, "expired")
    assert claims[-1].previous == "node-a"


async def test_a_deposed_node_is_refused_by_the_log_and_stops_taking_work(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a = await cluster("node-a", 1)
    await until(lambda: len(a.keeper.held) == SHARDS, "node-a holds every shard")
    assert a.keeper._task is not None
    a.keeper._task.cancel()  # paused: no renewals, but it still believes it holds them
    b = await cluster("node-b", 1)
    await until(lambda: len(b.keeper.held) == SHARDS, "node-b took them all", 30)

    with pytest.raises((LeaseLost, LogFailed)):
        await a.node.deploy(DeploySpec(name="late", component=wat("reply")))
    assert isinstance(a.node.log_failure, LeaseLost)
    assert "late" not in b.node.world.agents


async def two_nodes(cluster: Callable[[str, int], asyncio.Future[Member]]) -> tuple[Member, Member]:
    a = await cluster("node-a", 2)
    b = await cluster("node-b", 2)
    await until(
        lambda: (
            set(a.keeper.held) | set(b.keeper.held) == set(range(SHARDS))
            and bool(a.keeper.held)
            and bool(b.keeper.held)
            and not set(a.keeper.held) & set(b.keeper.held)
        ),
        "every shard held once, by both nodes",
    )
    return a, b


def agent_on(member: Member, prefix: str = "echo") -> str:
    return next(
        f"{prefix}-{i}" for i in range(999) if shard_of(f"{prefix}-{i}") in member.keeper.held
    )


async def test_a_client_s_retry_through_another_node_is_answered_not_sent_again(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a, b = await two_nodes(cluster)
    name = agent_on(a)
    await a.node.deploy(DeploySpec(name=name, component=wat("reply")))
    await until(lambda: f"{name}#0" in a.node.actors, "node-a runs it")
    sent = AclMessage(
        id="client-msg-1",
        performative=Performative.REQUEST,
        sender="",
        receivers=(name,),
        content="{}",
        protocol="fipa-request",
    )
    first = await a.node.send(sent, wait_ms=20_000)
    await until(lambda: b.node.world.position >= a.node.world.position, "node-b folded it")
    retried = await b.node.send(sent, wait_ms=20_000)  # the connection broke: try another node
    assert retried.message_id == first.message_id
    events = [r.event for r in await a.log.read()]
    assert sum(isinstance(e, MessageSent) and e.message.id == "client-msg-1" for e in events) == 1
    assert (
        sum(isinstance(e, MessageHandled) and e.message_id == "client-msg-1" for e in events) == 1
    )


async def test_a_message_sent_right_after_a_deploy_on_another_node_is_delivered_not_dead_lettered(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a, b = await two_nodes(cluster)
    for i in range(5):
        name = agent_on(b, f"fresh{i}")  # node-b runs it; deployed and asked through node-a
        await a.node.deploy(DeploySpec(name=name, component=wat("reply")))
        result = await a.node.send(request(name), wait_ms=20_000)
        assert result.reply is not None and result.reply.sender == name, result
        history = await a.log.read(conversation_id=result.conversation_id)
        assert not any(isinstance(r.event, MessageDeadLettered) for r in history)


async def test_a_node_whose_log_fails_stops_and_its_shards_are_taken_over(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a, b = await two_nodes(cluster)
    name = agent_on(a)
    await b.node.deploy(DeploySpec(name=name, component=wat("reply")))
    await until(lambda: f"{name}#0" in a.node.actors, "node-a runs it")
    pid = a.log._backend._reader.info.backend_pid  # type: ignore[attr-defined]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:  # its reads are cut
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with contextlib.suppress(LogFailed):  # refused if another node's commit came first
        await a.node.send(request(name), wait_ms=1)  # something to read: the follower fails
    async with asyncio.timeout(30):
        await a.node.deposed.wait()  # the server exits on it
    await a.keeper.halt()  # what the server does as it stops; its leases run out
    result = await b.node.send(request(name), wait_ms=30_000)
    assert result.reply is not None and result.reply.sender == name
    assert f"{name}#0" in b.node.actors


async def test_a_node_s_observers_see_its_own_commits_and_its_followers_the_others(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a = await cluster("node-a", 1)
    b = await cluster("node-b", 1)
    own: list[Recorded] = []
    others: list[Recorded] = []
    b.node.observers.append(own.append)
    b.node.followers.append(others.append)
    await a.node.deploy(DeploySpec(name="echo", component=wat("reply")))
    deployed = [r for r in await a.log.read() if isinstance(r.event, AgentDeployed)][-1]
    await until(lambda: b.node.world.position >= deployed.position, "node-b folded the deploy")
    await b.node.commit([MemberChanged(node="node-a", state="alive", by="node-b")])
    assert [r.position for r in others if isinstance(r.event, AgentDeployed)] == [deployed.position]
    assert [type(r.event) for r in own] == [MemberChanged]  # metrics count only these


async def test_a_node_prepares_the_components_of_agents_other_nodes_run(
    cluster: Callable[[str, int], asyncio.Future[Member]],
) -> None:
    a = await cluster("node-a", 1)  # holds every shard
    b = await cluster("node-b", 1)
    await a.node.deploy(DeploySpec(name="echo", component=wat("reply")))
    digest = a.node.world.agents["echo"].component
    # compiled on node-b too, ahead of a takeover that would otherwise wait for it
    await until(lambda: b.host.cache.has(digest), "node-b prepared echo's component")
    assert "echo#0" not in b.node.actors
