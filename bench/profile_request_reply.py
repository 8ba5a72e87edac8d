"""Where a request → reply's time goes: the in-process scenario of bench/runtime.py under
pyinstrument (`pip install -e '.[bench]'`).

    .venv/bin/python -m bench.profile_request_reply [N] [--html out.html]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from pyinstrument import Profiler

from bench.runtime import FAST, _request, close, fresh_node
from caxton.shell.runtime.node import DeploySpec
from tests.support import wat


async def profile(n: int, html: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="caxton-profile-") as tmp:
        node, log, host = await fresh_node(Path(tmp))
        await node.deploy(DeploySpec(name="echo", component=wat("reply"), limits=FAST))
        for _ in range(300):  # warm-up
            await node.send(_request("echo"), wait_ms=5_000)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        for _ in range(n):
            await node.send(_request("echo"), wait_ms=5_000)
        profiler.stop()
        await close(node, log, host)
    if html is not None:
        html.write_text(profiler.output_html())
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=3_000)
    parser.add_argument("--html", type=Path)
    args = parser.parse_args()
    asyncio.run(profile(args.n, args.html))
