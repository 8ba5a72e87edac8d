"""Gossip over real kinship on 127.0.0.1 (loopback timers): nodes join through a seed, leave,
are killed, are refused by another cluster, and processes running it exit cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from caxton.shell.cluster import Gossip, GossipConfig, GossipError, Peer
from tests.support import free_port

ROOT = Path(__file__).parents[2]
BOUND_S = 30.0
"""How long a test waits for a verdict; loopback timers give one in about a second."""

KEY = "q1vBDGB0Jr5dKxBx6sTSoBTq0bR0JyR5Yv2mcmAZ2+I="
OTHER_KEY = "Yf1eGQ7d0oOC0p0n8mS3qvJ5d7kq1m7ZbK0lWJ3T2oY="


class Watch:
    """What one node's `on_change` reported, in order, and a way to await a condition."""

    def __init__(self) -> None:
        self.seen: list[Peer] = []
        self._changed = asyncio.Event()

    def __call__(self, peer: Peer) -> None:
        self.seen.append(peer)
        self._changed.set()

    def states(self, node: str) -> list[str]:
        return [peer.state for peer in self.seen if peer.node == node]

    async def until_view(self, gossip: Gossip, expected: set[tuple[str, str, str]]) -> None:
        await self.until(lambda: view(gossip) == expected)

    async def until_state(self, node: str, state: str) -> None:
        """Until the latest change reported for `node` is to `state`."""
        await self.until(lambda: self.states(node)[-1:] == [state])

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(BOUND_S):
            while True:
                self._changed.clear()
                if condition():
                    return
                await self._changed.wait()


class Nodes:
    """Gossip nodes of one test's cluster, all closed at the end."""

    def __init__(self) -> None:
        self.cluster = f"test-{uuid.uuid4().hex[:8]}"
        self.running: list[Gossip] = []

    async def start(
        self, node: str, *seeds: str, key: str = "", cluster: str = "", bind: str = ""
    ) -> tuple[Gossip, Watch]:
        watch = Watch()
        config = GossipConfig(
            node=node,
            cluster=cluster or self.cluster,
            bind=bind or "127.0.0.1:0",
            seeds=seeds,
            api=f"api-{node}",
            key=key,
            fast=True,
        )
        gossip = await Gossip.start(config, watch)
        self.running.append(gossip)
        return gossip, watch

    async def close(self) -> None:
        await asyncio.gather(*(gossip.close() for gossip in self.running))


@pytest.fixture
async def nodes() -> AsyncIterator[Nodes]:
    started = Nodes()
    try:
        yield started
    finally:
        await started.close()


def view(gossip: Gossip) -> set[tuple[str, str, str]]:
    return {(peer.node, peer.state, peer.api) for peer in gossip.peers()}


def all_alive(*names: str) -> set[tuple[str, str, str]]:
    return {(name, "alive", f"api-{name}") for name in names}


def free_gossip_port() -> int:
    """A port free for both TCP and UDP on every interface (gossip binds both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, contextlib.suppress(OSError):
            udp.bind(("0.0.0.0", port))
            return port


async def test_three_nodes_joined_through_one_seed_see_each_other_alive_with_their_api(
    nodes: Nodes,
) -> None:
    a, watch_a = await nodes.start("a")
    b, watch_b = await nodes.start("b", a.local.address)
    c, watch_c = await nodes.start("c", a.local.address)

    for gossip, watch in ((a, watch_a), (b, watch_b), (c, watch_c)):
        await watch.until_view(gossip, all_alive("a", "b", "c"))
    assert b.peers()[0].node == "b"  # this node first
    assert {peer.address for peer in a.peers()} == {gossip.local.address for gossip in (a, b, c)}


async def test_a_node_that_closes_is_seen_to_have_left(nodes: Nodes) -> None:
    a, watch_a = await nodes.start("a")
    b, watch_b = await nodes.start("b", a.local.address)
    c, _ = await nodes.start("c", a.local.address)
    for gossip, watch in ((a, watch_a), (b, watch_b)):
        await watch.until_view(gossip, all_alive("a", "b", "c"))

    await c.close()

    for watch in (watch_a, watch_b):
        await watch.until_state("c", "left")
    assert ("c", "left", "api-c") in view(a)
    assert "dead" not in watch_a.states("c") + watch_b.states("c")


@pytest.mark.slow
async def test_a_killed_node_is_suspected_then_declared_dead(nodes: Nodes) -> None:
    a, watch_a = await nodes.start("a")
    b, watch_b = await nodes.start("b", a.local.address)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.cluster.gossip_node",
        "c",
        nodes.cluster,
        a.local.address,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(BOUND_S):
            assert await child.stdout.readline() == b"ready\n"
        for gossip, watch in ((a, watch_a), (b, watch_b)):
            await watch.until_view(gossip, all_alive("a", "b", "c"))

        child.send_signal(signal.SIGKILL)
        await child.wait()

        for watch in (watch_a, watch_b):
            await watch.until_state("c", "dead")
            assert watch.states("c")[-2:] == ["suspect", "dead"]
        assert ("c", "dead", "api-c") in view(a)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_nodes_on_lan_timers_join_on_loopback_in_plaintext_or_with_a_key() -> None:
    cluster = f"test-{uuid.uuid4().hex[:8]}"
    for key in ("", KEY):
        watch = Watch()

        def config(node: str, *seeds: str, key: str = key) -> GossipConfig:
            return GossipConfig(
                node=node,
                cluster=cluster,
                bind="127.0.0.1:0",
                seeds=seeds,
                key=key,
                api=f"api-{node}",
            )

        a = await Gossip.start(config("a"), watch)
        try:
            b = await Gossip.start(config("b", a.local.address), lambda peer: None)
            try:
                await watch.until_view(a, all_alive("a", "b"))
            finally:
                await b.close()
            await watch.until_state("b", "left")
        finally:
            await a.close()


@pytest.mark.parametrize(
    ("theirs", "mine"),
    [
        ({"cluster": "one"}, {"cluster": "two"}),
        ({"key": KEY}, {"key": OTHER_KEY}),
        ({"key": KEY}, {}),
    ],
    ids=["another cluster name", "another key", "no key"],
)
async def test_a_node_of_another_cluster_cannot_join(
    nodes: Nodes, theirs: dict[str, str], mine: dict[str, str]
) -> None:
    a, watch_a = await nodes.start("a", **theirs)

    with pytest.raises(GossipError, match="no seed answered") as refused:
        await nodes.start("b", a.local.address, **mine)

    assert "check --seeds, the cluster name and the key" in str(refused.value)
    assert view(a) == all_alive("a")
    assert watch_a.seen == []


async def test_a_node_whose_seeds_do_not_answer_refuses_to_start_alone(nodes: Nodes) -> None:
    silent = f"127.0.0.1:{free_gossip_port()}"

    with pytest.raises(GossipError, match=f"no seed answered \\({silent}\\)"):
        await nodes.start("a", silent)


async def test_a_node_named_among_its_own_seeds_does_not_count_as_an_answer(
    nodes: Nodes,
) -> None:
    port = free_gossip_port()
    silent = f"127.0.0.1:{free_gossip_port()}"
    # bound to every interface, kinship would push-pull with itself through 127.0.0.1
    with pytest.raises(GossipError, match=f"no seed answered \\({silent}\\)"):
        await nodes.start("a", f"127.0.0.1:{port}", silent, key=KEY, bind=f"0.0.0.0:{port}")

    # the same list on the first node of a cluster: itself alone is no seed to wait for
    a, _ = await nodes.start("a", f"127.0.0.1:{port}", key=KEY, bind=f"0.0.0.0:{port}")
    assert view(a) == all_alive("a")


def test_plaintext_gossip_off_loopback_is_refused() -> None:
    with pytest.raises(ValueError, match="without a cluster key: plaintext gossip is for loopback"):
        GossipConfig(node="a", cluster="c", bind="0.0.0.0:7946")
    with pytest.raises(ValueError, match="without a cluster key"):
        GossipConfig(node="a", cluster="c", bind="10.0.0.5:7946")
    GossipConfig(node="a", cluster="c", bind="0.0.0.0:7946", key=KEY)
    GossipConfig(node="a", cluster="c", bind="[::1]:7946")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"node": ""}, "node id '' is 0 bytes: it must be 1 to 64 bytes"),
        ({"node": "é" * 33}, "is 66 bytes: it must be 1 to 64 bytes"),
        ({"cluster": ""}, "cluster name '' is 0 bytes"),
        ({"bind": "localhost:7946"}, "the host must be an IP address"),
        ({"bind": "127.0.0.1"}, "gossip address '127.0.0.1' must be host:port"),
        ({"seeds": ("node-1",)}, "seed 'node-1' must be host:port"),
        ({"key": "c2hvcnQ="}, "the cluster key must be 32 bytes in base64"),
        ({"key": "not base64!"}, "the cluster key must be 32 bytes in base64"),
    ],
)
def test_unusable_settings_are_refused_saying_which(fields: dict[str, str], error: str) -> None:
    settings = {"node": "a", "cluster": "c", "bind": "127.0.0.1:7946", **fields}
    with pytest.raises(ValueError, match=error.replace("(", "\\(")):
        GossipConfig(**settings)  # type: ignore[arg-type]


async def test_a_gossip_port_in_use_is_a_gossip_error(nodes: Nodes) -> None:
    a, _ = await nodes.start("a")
    with pytest.raises(GossipError, match=f"cannot gossip on {a.local.address}"):
        await nodes.start("b", bind=a.local.address)


def run_and_exit(cluster: str, count: int) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "tests.cluster.gossip_exit", cluster, str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == "closed\n", done.stderr[-2000:]
    return done.returncode


@pytest.mark.slow
def test_processes_that_ran_gossip_exit_cleanly() -> None:
    # Without the workaround about 3 % of these processes crashed with three nodes and
    # 10-20 % with one: 40 runs make a crash all but certain.
    counts = [3] * 10 + [1] * 30
    with ThreadPoolExecutor(2) as pool:
        clusters = [f"exit-{uuid.uuid4().hex[:8]}" for _ in counts]
        codes = list(pool.map(run_and_exit, clusters, counts))
    assert [code for code in codes if code != 0] == []
