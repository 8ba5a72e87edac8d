"""One gossip node in a process of its own, for tests that kill it: it joins SEED, prints
"ready", and runs until SIGTERM (a graceful close) or SIGKILL.

usage: python -m tests.cluster.gossip_node NODE CLUSTER SEED
"""

from __future__ import annotations

import asyncio
import signal
import sys

from caxton.shell.cluster import Gossip, GossipConfig


async def main(node: str, cluster: str, seed: str) -> None:
    config = GossipConfig(
        node=node,
        cluster=cluster,
        bind="127.0.0.1:0",
        seeds=(seed,),
        api=f"api-{node}",
        fast=True,
    )
    gossip = await Gossip.start(config, lambda peer: None)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await gossip.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
