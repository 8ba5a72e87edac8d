"""Starts NODES gossip nodes in this process, waits until each sees the others, closes
them and exits normally: the process must exit with 0 (kinship's native threads can crash
it at interpreter exit; see `caxton.shell.cluster.gossip.EXIT_GRACE_S`).

usage: python -m tests.cluster.gossip_exit CLUSTER NODES
"""

from __future__ import annotations

import asyncio
import sys

from caxton.shell.cluster import Gossip, GossipConfig, Peer


async def main(cluster: str, count: int) -> None:
    changed = asyncio.Event()

    def on_change(peer: Peer) -> None:
        changed.set()

    def config(node: str, seeds: tuple[str, ...] = ()) -> GossipConfig:
        return GossipConfig(node=node, cluster=cluster, bind="127.0.0.1:0", seeds=seeds, fast=True)

    first = await Gossip.start(config("n0"), on_change)
    seed = (first.local.address,)
    nodes = [
        first,
        *[await Gossip.start(config(f"n{i}", seed), on_change) for i in range(1, count)],
    ]
    async with asyncio.timeout(30):
        while not all(len(node.peers()) == count for node in nodes):
            changed.clear()
            await changed.wait()
    await asyncio.gather(*(node.close() for node in nodes))
    print("closed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
