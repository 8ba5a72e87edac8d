"""The standard gRPC health and reflection services, called by Google's grpcio over a socket.

The client is grpcio's own (grpc.aio) with the messages of grpclib's health and reflection
modules: grpcio-health-checking's and grpcio-reflection's modules register the same
protobuf symbols under other file names, so they cannot share a process with grpclib's
(tests/e2e/test_grpc_standard.py runs them in a process of their own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.descriptor_pool import DescriptorPool
from grpclib.health.check import ServiceStatus
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.reflection.v1.reflection_pb2 import (
    ServerReflectionRequest,
    ServerReflectionResponse,
)

from caxton.shell.api.service import services_for
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.server import api_server, stop_serving
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost
from tests.support import free_port

TOKEN = "s3cret"
BEARER = (("authorization", f"Bearer {TOKEN}"),)
SERVING = HealthCheckResponse.SERVING
NOT_SERVING = HealthCheckResponse.NOT_SERVING


@dataclass
class Running:
    channel: grpc.aio.Channel
    stop: Callable[[], Any]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The API as `caxton server start` builds it (with a token), on a loopback port."""
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    node = Node(log=log, host=host, clock=SystemClock(), node_id="node-health")
    await node.start()
    serving = ServiceStatus()
    server = api_server(services_for(node, log), serving, token=TOKEN)
    port = free_port()
    await server.start("127.0.0.1", port)
    serving.set(True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Running(channel, lambda: stop_serving(server, serving))
    finally:
        await stop_serving(server, serving)
        await node.shutdown()
        await log.close()
        host.close()


def _health(channel: grpc.aio.Channel, method: str) -> Any:
    call = channel.unary_stream if method == "Watch" else channel.unary_unary
    return call(
        f"/grpc.health.v1.Health/{method}",
        request_serializer=HealthCheckRequest.SerializeToString,
        response_deserializer=HealthCheckResponse.FromString,
    )


async def check(channel: grpc.aio.Channel, service: str) -> int:
    reply = await _health(channel, "Check")(HealthCheckRequest(service=service), timeout=10)
    return int(reply.status)


async def test_the_health_check_says_serving_for_the_server_and_each_service(
    running: Running,
) -> None:
    # no token: probes (Kubernetes' gRPC probe, grpc_health_probe) send none
    assert await check(running.channel, "") == SERVING
    for service in ("caxton.v1.MessageService", "caxton.v1.AgentService"):
        assert await check(running.channel, service) == SERVING


async def test_the_health_check_of_an_unknown_service_is_not_found(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(running.channel, "caxton.v1.NoSuchService")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_health_watch_says_serving_then_not_serving_when_the_server_stops(
    running: Running,
) -> None:
    call = _health(running.channel, "Watch")(HealthCheckRequest(service=""), timeout=30)
    answers = aiter(call)
    assert (await anext(answers)).status == SERVING
    await running.stop()
    assert (await anext(answers)).status == NOT_SERVING
    call.cancel()


class Reflection:
    """What a reflection client (grpcurl, Postman) asks, on one ServerReflectionInfo stream."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> None:
        self.call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=ServerReflectionRequest.SerializeToString,
            response_deserializer=ServerReflectionResponse.FromString,
        )(metadata=metadata, timeout=30)

    async def ask(self, **request: str) -> ServerReflectionResponse:
        await self.call.write(ServerReflectionRequest(**request))
        answer = await self.call.read()
        assert isinstance(answer, ServerReflectionResponse), answer
        return answer

    async def services(self) -> list[str]:
        answer = await self.ask(list_services="")
        return [service.name for service in answer.list_services_response.service]

    async def describe(self, service: str) -> ServiceDescriptor:
        """The service from its file and the files that file imports, found by name."""
        files: dict[str, FileDescriptorProto] = {}
        wanted = [await self.ask(file_containing_symbol=service)]
        while wanted:
            answer = wanted.pop()
            assert answer.HasField("file_descriptor_response"), answer
            for serialized in answer.file_descriptor_response.file_descriptor_proto:
                file = FileDescriptorProto.FromString(serialized)
                files[file.name] = file
                for name in file.dependency:
                    if name not in files:
                        wanted.append(await self.ask(file_by_filename=name))
        pool = DescriptorPool()
        added: set[str] = set()

        def add(name: str) -> None:  # dependencies first
            if name not in added:
                for dependency in files[name].dependency:
                    add(dependency)
                pool.Add(files[name])
                added.add(name)

        for name in list(files):
            add(name)
        return pool.FindServiceByName(service)


async def test_reflection_lists_caxtons_services_and_the_health_service(
    running: Running,
) -> None:
    reflection = Reflection(running.channel, BEARER)
    assert set(await reflection.services()) == {
        "caxton.v1.AgentService",
        "caxton.v1.MessageService",
        "caxton.v1.ConversationService",
        "caxton.v1.EventService",
        "caxton.v1.ClusterService",
        "grpc.health.v1.Health",
    }
    reflection.call.cancel()


async def test_reflection_describes_a_service_down_to_its_messages(running: Running) -> None:
    reflection = Reflection(running.channel, BEARER)
    messages = await reflection.describe("caxton.v1.MessageService")
    send = messages.methods_by_name["Send"]
    assert send.input_type.full_name == "caxton.v1.SendRequest"
    envelope = send.input_type.fields_by_name["message"].message_type
    assert envelope.full_name == "caxton.v1.AclEnvelope"  # from acl.proto, an import
    assert "performative" in envelope.fields_by_name

    health = await reflection.describe("grpc.health.v1.Health")
    assert set(health.methods_by_name) == {"Check", "Watch"}
    missing = await reflection.ask(file_containing_symbol="caxton.v1.Nothing")
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    reflection.call.cancel()


async def test_reflection_needs_the_token_when_the_server_has_one(running: Running) -> None:
    # refused on the call's headers, before any request is written
    reflection = Reflection(running.channel, ())
    assert await reflection.call.code() is grpc.StatusCode.UNAUTHENTICATED
