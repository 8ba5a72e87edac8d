"""A cluster of `caxton server start` processes on one PostgreSQL log: agents run on the
holder of their shard, any node answers for any agent, a node killed with SIGKILL has its
agents taken over, and the log shows every message handled once."""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from caxton.client import CaxtonClient
from caxton.domain.events import MessageHandled, ShardClaimed
from caxton.domain.placement import shard_of
from caxton.shell.store import EventLog
from tests.e2e.conftest import ServerProcess, free_port
from tests.store.conftest import POSTGRES_URL, _require_postgres
from tests.support import wat

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.cluster]

LEASE = "3"  # seconds: a takeover within a few of them


@pytest.fixture
def store() -> Iterator[str]:
    _require_postgres()
    schema = f"caxton_e2e_cluster_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def nodes(tmp_path: Path, store: str) -> Iterator[list[ServerProcess]]:
    gossip = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    started: list[ServerProcess] = []
    try:
        for i, address in enumerate(gossip):
            node = ServerProcess(tmp_path / f"n{i}", f"127.0.0.1:{free_port()}")
            seeds = ("--seeds", gossip[0]) if i else ()
            flags = ("--store", store, "--cluster", "e2e", "--gossip", address)
            started.append(node.start(*flags, *seeds, "--node-id", f"n{i}", "--lease", LEASE))
        yield started
    finally:
        for node in started:
            if node.process is not None and node.process.poll() is None:
                node.kill()


async def invoke_until_answered(address: str, agent: str, *, within_s: float = 90) -> str:
    """Invokes `agent` through the node at `address` until it answers (its shard's holder
    may still be starting it); returns the replying agent's name."""
    async with asyncio.timeout(within_s):
        while True:
            async with CaxtonClient(address) as client:
                try:
                    reply = await client.invoke(agent, {"ping": 1}, timeout=5)
                except Exception:  # not running yet, or its node just died: ask again
                    await asyncio.sleep(0.2)
                    continue
            return reply.sender


async def holder(store: str, agent: str) -> str:
    """The node that last claimed the agent's shard, as the log says."""
    log = await EventLog.open(store, shared=True)
    try:
        claims = [
            r.event
            for r in await log.read()
            if isinstance(r.event, ShardClaimed) and r.event.shard == shard_of(agent)
        ]
    finally:
        await log.close()
    return claims[-1].node


def test_any_node_answers_for_any_agent_and_a_killed_node_s_agents_move(
    nodes: list[ServerProcess], store: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with CaxtonClient(nodes[0].address) as client:
            await client.deploy(wat("reply"), name="echo")
        for node in nodes:  # deployed on n0, answered through each node
            assert await invoke_until_answered(node.address, "echo") == "echo"
        first = await holder(store, "echo")
        victim = next(n for n in nodes if n.data_dir.name == first)
        victim.kill()
        survivor = next(n for n in nodes if n is not victim)
        assert await invoke_until_answered(survivor.address, "echo") == "echo"
        assert await holder(store, "echo") != first
        async with CaxtonClient(survivor.address) as client:
            view = await client.members()
        assert view.clustered and {m.node for m in view.members} == {"n0", "n1", "n2"}
        gone = next(m for m in view.members if m.node == first)
        assert "echo" not in gone.agents
        assert any("echo" in m.agents for m in view.members if m.node != first)
        log = await EventLog.open(store, shared=True)
        try:
            handled = Counter(
                r.event.message_id for r in await log.read() if isinstance(r.event, MessageHandled)
            )
        finally:
            await log.close()
        assert handled and max(handled.values()) == 1  # none handled twice

    asyncio.run(scenario())


def test_a_node_paused_past_its_lease_is_deposed_and_rejoins_when_it_wakes(
    nodes: list[ServerProcess], store: str
) -> None:
    async def scenario() -> None:
        async with CaxtonClient(nodes[1].address) as client:
            await client.deploy(wat("reply"), name="echo")
        assert await invoke_until_answered(nodes[1].address, "echo") == "echo"
        first = await holder(store, "echo")
        paused = next(n for n in nodes if n.data_dir.name == first)
        assert paused.process is not None
        paused.process.send_signal(signal.SIGSTOP)  # a long GC pause, a frozen VM
        try:
            awake = next(n for n in nodes if n is not paused)
            assert await invoke_until_answered(awake.address, "echo") == "echo"
            assert await holder(store, "echo") != paused.data_dir.name
        finally:
            paused.process.send_signal(signal.SIGCONT)
        # it finds its leases gone (taken, or lapsed while it slept: whichever it sees
        # first), stops its agents, and restarts in place to rejoin
        said = await asyncio.to_thread(read_until, paused, "listening on", within_s=120)
        assert f"node {paused.data_dir.name} stopped working" in said, said
        assert "rejoining the cluster" in said, said
        assert await invoke_until_answered(paused.address, "echo") == "echo"
        assert paused.stop() == 0  # the restarted node stops as any other

    asyncio.run(scenario())


def read_until(node: ServerProcess, text: str, *, within_s: float) -> str:
    """The server's output up to the first line holding `text` (it is still running)."""
    assert node.process is not None and node.process.stdout is not None
    stdout = node.process.stdout
    lines: list[str] = []

    def reading() -> None:
        for line in stdout:
            lines.append(line)
            if text in line:
                return

    reader = threading.Thread(target=reading, daemon=True)
    reader.start()
    reader.join(within_s)
    assert not reader.is_alive(), f"no {text!r} within {within_s} s:\n" + "".join(lines)
    return "".join(lines)
