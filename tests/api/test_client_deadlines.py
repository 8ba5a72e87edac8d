"""The client's deadlines: none on a deploy, and a call that outlives one says which it was."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpclib.const import Cardinality, Handler
from grpclib.metadata import Deadline
from grpclib.server import Server, Stream

from caxton.client import CaxtonClient, DeadlineExceeded
from caxton.shell.api.codec import RequestCodec
from caxton.shell.api.generated.caxton import v1
from tests.support import free_port


class SlowAgentService:
    """An AgentService whose Deploy answers only when the test says so (a first compile on
    a busy machine), and whose ListAgents never answers."""

    def __init__(self) -> None:
        self.answer_deploy = asyncio.Event()
        self.deploy_deadlines: list[Deadline | None] = []

    def __mapping__(self) -> dict[str, Handler]:
        return {
            "/caxton.v1.AgentService/Deploy": Handler(
                self._deploy, Cardinality.UNARY_UNARY, v1.DeployRequest, v1.AgentInfo
            ),
            "/caxton.v1.AgentService/ListAgents": Handler(
                self._list_agents, Cardinality.UNARY_UNARY, v1.ListAgentsRequest, v1.ListAgentsReply
            ),
        }

    async def _deploy(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        self.deploy_deadlines.append(stream.deadline)
        await self.answer_deploy.wait()
        await stream.send_message(v1.AgentInfo(name=request.name, status_line="✓ Running"))

    async def _list_agents(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def serving(service: SlowAgentService) -> AsyncIterator[str]:
    server = Server([service], codec=RequestCodec())
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_deploy_has_no_client_deadline_and_outlasts_the_one_other_calls_have() -> None:
    service = SlowAgentService()
    async with serving(service) as address, CaxtonClient(address, timeout=0.5) as client:
        deploy = asyncio.create_task(client.deploy(b"\0asm", "slow", filename="slow.wasm"))
        # another call with the client's per-call deadline: once it has passed, the deploy
        # has been running longer than that deadline too
        with pytest.raises(DeadlineExceeded) as failed:
            await client.agents()
        assert not deploy.done()
        service.answer_deploy.set()
        info = await deploy

    assert info.name == "slow"
    assert service.deploy_deadlines == [None]  # no grpc-timeout went with the request
    assert str(failed.value).startswith(f"list agents to {address} was still running when")
