"""An agent's memory survives a cluster failover: the node that takes its shard over
rebuilds it from the shared log (its last snapshot, then what it handled after)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from caxton.client import CaxtonClient
from caxton.domain.events import AgentStarted
from tests.conftest import AgentBuilds
from tests.e2e.test_cluster import cluster, holder, read_log, store  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.cluster]

AGENTS = Path(__file__).parent / "agents"


async def count_through(address: str, *, within_s: float = 120) -> int:
    """The counter's answer through the node at `address`, retried while its shard's new
    holder is still rebuilding it."""
    async with asyncio.timeout(within_s):
        while True:
            with contextlib.suppress(Exception):
                async with CaxtonClient(address) as client:
                    reply = await client.invoke("counter", {}, timeout=10)
                if reply.sender == "counter":
                    return int(reply.json()["count"])
            await asyncio.sleep(0.2)


def test_a_counter_keeps_counting_on_the_node_that_takes_its_shard_over(
    tmp_path: Path,
    store: str,  # noqa: F811
    agent_builds: AgentBuilds,
) -> None:
    for i in range(3):  # every node may run it: none compiles it first
        agent_builds.seed(tmp_path / f"n{i}", AGENTS / "counter.py")
    wasm = agent_builds.component(AGENTS / "counter.py").read_bytes()
    with cluster(tmp_path, store, lease="3") as nodes:

        async def scenario() -> None:
            async with CaxtonClient(nodes[0].address) as client:
                await client.deploy(wasm, "counter", snapshot_every=2)
            assert [await count_through(nodes[i % 3].address) for i in range(3)] == [1, 2, 3]
            first = await holder(store, "counter")
            victim = next(n for n in nodes if n.data_dir.name == first)
            victim.kill()
            survivor = next(n for n in nodes if n is not victim)
            assert await count_through(survivor.address) == 4
            assert await holder(store, "counter") != first
            starts = [r for r in await read_log(store) if isinstance(r.event, AgentStarted)]
            rebuilt = starts[-1]
            assert isinstance(rebuilt.event, AgentStarted)
            assert rebuilt.node != first and rebuilt.event.memory
            assert (rebuilt.event.restored, rebuilt.event.rebuilt) == (2, 1)

        asyncio.run(scenario())
