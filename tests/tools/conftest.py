"""Fixtures for the tool bridge: real MCP servers as subprocesses, a real node around them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.store import EventLog
from caxton.shell.tools import ToolServerConfig
from caxton.shell.tools.bridge import ToolBridge
from caxton.shell.wasm import WasmHost
from tests.support import free_port

ROOT = Path(__file__).parents[2]
REGISTRY_SERVERS = ROOT / ".venv" / "tool-servers"


def toybox(name: str = "toy", **settings: object) -> ToolServerConfig:
    """The test server of tests/tools/toybox.py over stdio."""
    return ToolServerConfig(
        name=name,
        command=sys.executable,
        args=("-m", "tests.tools.toybox"),
        env={"PYTHONPATH": str(ROOT)},
        **settings,  # type: ignore[arg-type]
    )


def registry_server(package: str) -> Path:
    """The executable of an MCP server installed from PyPI by `python3 dev.py setup`."""
    path = REGISTRY_SERVERS / package / "bin" / f"mcp-server-{package}"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python3 dev.py setup` (it installs the test servers)")
    return path


@pytest.fixture
def http_toybox() -> Iterator[str]:
    """tests/tools/toybox.py serving streamable HTTP on a loopback port; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tools.toybox", "--http", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:  # the server is up once its port answers
            try:
                httpx2.get(url, timeout=1)
                break
            except httpx2.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the HTTP toybox did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def make_node(tmp_path: Path, *servers: ToolServerConfig) -> tuple[Node, ToolBridge]:
    bridge = ToolBridge(servers)
    bridge.bind()
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    node = Node(log=log, host=host, clock=SystemClock(), node_id="node-test", tools=bridge)
    await node.start()
    return node, bridge


async def close_node(node: Node, bridge: ToolBridge) -> None:
    await node.shutdown()
    await bridge.close()
    await node.log.close()
    node.host.close()


@pytest.fixture
async def bridge() -> AsyncIterator[ToolBridge]:
    running = ToolBridge((toybox(),))
    running.bind()
    try:
        yield running
    finally:
        await running.close()
