"""A cluster of `caxton server start` processes on one PostgreSQL log: agents run on the
holder of their shard, any node answers for any agent, a node killed with SIGKILL or
paused past its lease has its agents taken over, a node stopped with SIGTERM hands its
shards over at once; after each fault the log checker finds the log sound."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from caxton.client import CaxtonClient
from caxton.domain.events import (
    MessageHandled,
    NodeStopped,
    Recorded,
    ShardClaimed,
    ShardReleased,
)
from caxton.domain.placement import shard_of
from caxton.shell.store import EventLog
from tests.cluster.checker import assert_log_sound, now_ms
from tests.e2e.conftest import ServerProcess, free_port
from tests.store.conftest import postgres_schema
from tests.support import wat

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.cluster]

LEASE = "3"  # seconds: a takeover within a few of them
HELD_AGAIN_S = 30  # every shard held again after a fault: a lease, a tick, a busy machine


@pytest.fixture
def store() -> Iterator[str]:
    with postgres_schema("caxton_e2e_cluster") as url:
        yield url


@pytest.fixture
def nodes(tmp_path: Path, store: str) -> Iterator[list[ServerProcess]]:
    with cluster(tmp_path, store, lease=LEASE) as started:
        yield started


@contextlib.contextmanager
def cluster(tmp_path: Path, store: str, *, lease: str) -> Iterator[list[ServerProcess]]:
    """Three nodes n0, n1, n2 on `store` (n0 the others' seed), killed at the end if running."""
    gossip = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    started: list[ServerProcess] = []
    try:
        for i, address in enumerate(gossip):
            node = ServerProcess(tmp_path / f"n{i}", f"127.0.0.1:{free_port()}")
            seeds = ("--seeds", gossip[0]) if i else ()
            flags = ("--store", store, "--cluster", "e2e", "--gossip", address)
            started.append(node.start(*flags, *seeds, "--node-id", f"n{i}", "--lease", lease))
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
    claims = [
        r.event
        for r in await read_log(store)
        if isinstance(r.event, ShardClaimed) and r.event.shard == shard_of(agent)
    ]
    return claims[-1].node


async def read_log(store: str) -> list[Recorded]:
    log = await EventLog.open(store, shared=True)
    try:
        return await log.read()
    finally:
        await log.close()


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
        killed_at = now_ms()
        survivor = next(n for n in nodes if n is not victim)
        assert await invoke_until_answered(survivor.address, "echo") == "echo"
        assert await holder(store, "echo") != first
        async with asyncio.timeout(HELD_AGAIN_S), CaxtonClient(survivor.address) as client:
            while True:  # the survivor folds the new holder's claim a moment after the log has it
                view = await client.members()
                if any("echo" in m.agents for m in view.members if m.node != first):
                    break
                await asyncio.sleep(0.1)
        assert view.clustered and {m.node for m in view.members} == {"n0", "n1", "n2"}
        gone = next(m for m in view.members if m.node == first)
        assert "echo" not in gone.agents
        log = await EventLog.open(store, shared=True)
        try:
            handled = Counter(
                r.event.message_id for r in await log.read() if isinstance(r.event, MessageHandled)
            )
        finally:
            await log.close()
        assert handled and max(handled.values()) == 1  # none handled twice
        await assert_log_sound(
            store,
            survivor.address,
            tmp_path / "check",
            settled_after_ms=killed_at,
            gone={first},
            within_s=HELD_AGAIN_S,
        )

    asyncio.run(scenario())


def test_a_node_paused_past_its_lease_is_deposed_and_rejoins_when_it_wakes(
    nodes: list[ServerProcess], store: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with CaxtonClient(nodes[1].address) as client:
            await client.deploy(wat("reply"), name="echo")
        assert await invoke_until_answered(nodes[1].address, "echo") == "echo"
        first = await holder(store, "echo")
        paused = next(n for n in nodes if n.data_dir.name == first)
        assert paused.process is not None
        paused.process.send_signal(signal.SIGSTOP)  # a long GC pause, a frozen VM
        paused_at = now_ms()
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
        await assert_log_sound(
            store,
            paused.address,
            tmp_path / "check",
            settled_after_ms=paused_at,
            gone={paused.data_dir.name},
            within_s=HELD_AGAIN_S,
        )
        assert paused.stop() == 0  # the restarted node stops as any other

    asyncio.run(scenario())


GRACEFUL_LEASE_S = 30  # long: a takeover that waited for expiry would show


def test_a_node_stopped_with_sigterm_hands_its_shards_over_without_waiting_for_expiry(
    tmp_path: Path, store: str
) -> None:
    async def scenario(nodes: list[ServerProcess]) -> None:
        async with CaxtonClient(nodes[0].address) as client:
            await client.deploy(wat("reply"), name="echo")
        assert await invoke_until_answered(nodes[0].address, "echo") == "echo"
        leaving_id = await holder(store, "echo")
        leaving = next(n for n in nodes if n.data_dir.name == leaving_id)
        assert leaving.process is not None
        leaving.process.send_signal(signal.SIGTERM)
        said, _ = await asyncio.to_thread(leaving.process.communicate, timeout=60)
        assert leaving.process.returncode == 0, said
        survivor = next(n for n in nodes if n is not leaving)
        assert await invoke_until_answered(survivor.address, "echo") == "echo"

        history = await read_log(store)
        assert [r for r in history if r.event == NodeStopped(node=leaving_id)]
        # the hand-over: one transaction of ShardReleased, one per shard it held then
        releases = [
            r for r in history if isinstance(r.event, ShardReleased) and r.event.node == leaving_id
        ]
        assert releases, "no ShardReleased recorded by the leaving node"
        handover = [r for r in releases if r.at == releases[-1].at]
        start = handover[0].position
        last_claims = {
            r.event.shard: r.event
            for r in history
            if r.position < start and isinstance(r.event, ShardClaimed)
        }
        held = {shard for shard, claim in last_claims.items() if claim.node == leaving_id}
        assert shard_of("echo") in held
        handed = {r.event.shard for r in handover if isinstance(r.event, ShardReleased)}
        assert held == handed, f"held {sorted(held)}, released {sorted(handed)}"
        async with asyncio.timeout(GRACEFUL_LEASE_S * 2 / 3):  # claims follow the hand-over
            while True:
                taken = [
                    r
                    for r in history
                    if isinstance(r.event, ShardClaimed)
                    and r.event.previous == leaving_id
                    and r.position > start
                ]
                if {r.event.shard for r in taken if isinstance(r.event, ShardClaimed)} == held:
                    break
                await asyncio.sleep(0.2)
                history = await read_log(store)
        delays = [(r.at - handover[0].at) / 1000 for r in taken]
        print(f"MEASURED handover after SIGTERM: {min(delays):.1f}-{max(delays):.1f} s")
        for r in taken:
            assert isinstance(r.event, ShardClaimed)
            assert r.event.reason == "released", r.event
            # renewed at most a third of a lease before the stop, its lease would have run
            # until two thirds of a lease after it at the earliest
            assert r.at - handover[0].at < GRACEFUL_LEASE_S * 2 / 3 * 1000, (r, handover[0])
        await assert_log_sound(
            store, survivor.address, tmp_path / "check", within_s=GRACEFUL_LEASE_S * 2 / 3
        )

    with cluster(tmp_path, store, lease=str(GRACEFUL_LEASE_S)) as nodes:
        asyncio.run(scenario(nodes))


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
