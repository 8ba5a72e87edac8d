"""A real node (SQLite file, wasmtime) with its observability attached, served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpclib.server import Server

from caxton.client import CaxtonClient
from caxton.shell.api.ops import OpsService
from caxton.shell.api.service import services_for
from caxton.shell.config import ServerConfig
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.wiring import Observability
from tests.support import free_port


@dataclass
class Observed:
    node: Node
    log: EventLog
    observability: Observability
    client: CaxtonClient
    config: ServerConfig


@pytest.fixture
async def observed(tmp_path: Path) -> AsyncIterator[Observed]:
    from caxton.shell.wasm import WasmHost

    config = ServerConfig(
        data_dir=tmp_path,
        metrics=f"127.0.0.1:{free_port()}",
        health=f"127.0.0.1:{free_port()}",
    )
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    node = Node(log=log, host=host, clock=SystemClock(), node_id="node-obs")
    observability = Observability(config)
    await observability.bind()
    observability.attach(node, log)
    await node.start()
    observability.checks["integrity"] = True
    server = Server([*services_for(node, log), OpsService(node, observability.stats)])
    observability.count_requests(server)
    port = free_port()
    await server.start("127.0.0.1", port)
    observability.checks["api"] = True
    client = CaxtonClient(f"127.0.0.1:{port}")
    try:
        yield Observed(node, log, observability, client, config)
    finally:
        client.close()
        server.close()
        await server.wait_closed()
        await node.shutdown()
        await observability.close()
        await log.close()
        host.close()
