"""Fixtures for the runtime tests: a real node on a real SQLite file and real wasmtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost
from tests.support import wat

__all__ = ["node", "wat"]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    running = Node(log=log, host=host, clock=SystemClock(), node_id="node-test")
    await running.start()
    try:
        yield running
    finally:
        await running.shutdown()
        await log.close()
        host.close()
