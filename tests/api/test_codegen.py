"""The committed API code matches proto/caxton/v1, and its grpclib stubs and bases work."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib import GRPCError
from grpclib.const import Status
from grpclib.testing import ChannelFor

from caxton.shell.api.generated.caxton.v1 import (
    AclEnvelope,
    AgentInfo,
    AgentServiceBase,
    AgentServiceStub,
    DeadLetter,
    EventRecord,
    EventServiceBase,
    EventServiceStub,
    GetAgentRequest,
    InstanceInfo,
    Limits,
    MessageServiceBase,
    MessageServiceStub,
    SendReply,
    SendRequest,
    StreamEventsRequest,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_code_is_what_the_proto_files_generate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "caxton.shell.api.codegen", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class _Agents(AgentServiceBase):
    async def get_agent(self, message: GetAgentRequest) -> AgentInfo:
        if message.name != "echo":
            raise GRPCError(Status.NOT_FOUND, f"no agent named {message.name!r}")
        return AgentInfo(
            name="echo",
            replicas=1,
            limits=Limits(memory_bytes=64 << 20, timeout_ms=5_000, mailbox=1_024),
            status="running",
            status_line="✓ Running (1/1 instances healthy)",
            instances=[InstanceInfo(replica=0, lifecycle="running", incarnation=1)],
        )


class _Messages(MessageServiceBase):
    async def send(self, message: SendRequest) -> SendReply:
        sent = message.message
        assert sent is not None
        reply = AclEnvelope(
            id="r1",
            performative="inform",
            sender=sent.receivers[0],
            receivers=[sent.sender],
            conversation_id="c1",
            in_reply_to=sent.reply_with,
        )
        return SendReply(
            message_id="m1",
            conversation_id="c1",
            deliveries=["echo#0"],
            dead_letters=[DeadLetter(receiver="nobody", reason="no agent named 'nobody'")],
            reply=reply if message.wait_ms > 0 else None,
        )


class _Events(EventServiceBase):
    async def stream_events(self, message: StreamEventsRequest) -> AsyncIterator[EventRecord]:
        for position in range(message.from_position, message.from_position + 3):
            yield EventRecord(position=position, stream="agent:echo", type="AgentStarted")


async def test_a_unary_call_reaches_the_service_and_its_errors_come_back_as_status() -> None:
    async with ChannelFor([_Agents()]) as channel:
        agents = AgentServiceStub(channel)
        info = await agents.get_agent(GetAgentRequest(name="echo"))
        assert info.status_line == "✓ Running (1/1 instances healthy)"
        assert info.limits == Limits(memory_bytes=64 << 20, timeout_ms=5_000, mailbox=1_024)
        assert [i.lifecycle for i in info.instances] == ["running"]
        with pytest.raises(GRPCError) as missing:
            await agents.get_agent(GetAgentRequest(name="ghost"))
        assert missing.value.status is Status.NOT_FOUND
        with pytest.raises(GRPCError) as unimplemented:
            await agents.list_agents()
        assert unimplemented.value.status is Status.UNIMPLEMENTED


async def test_an_envelope_crosses_the_wire_with_an_unset_reply_by_kept_apart_from_zero() -> None:
    async with ChannelFor([_Messages()]) as channel:
        messages = MessageServiceStub(channel)
        envelope = AclEnvelope(
            performative="request",
            sender="client:cli",
            receivers=["echo", "nobody"],
            content='{"n": 1}',
            reply_with="w1",
            reply_by=0,
        )
        waited = await messages.send(SendRequest(message=envelope, wait_ms=100))
        assert waited.deliveries == ["echo#0"]
        assert waited.dead_letters == [
            DeadLetter(receiver="nobody", reason="no agent named 'nobody'")
        ]
        assert waited.reply is not None
        assert waited.reply.in_reply_to == "w1"
        assert waited.reply.reply_by is None
        assert AclEnvelope.parse(bytes(envelope)).reply_by == 0
        not_waited = await messages.send(SendRequest(message=envelope))
        assert not_waited.reply is None


async def test_a_server_stream_is_an_async_generator_in_the_base_and_an_iterator_in_the_stub() -> (
    None
):
    async with ChannelFor([_Events()]) as channel:
        events = EventServiceStub(channel)
        received = [r async for r in events.stream_events(StreamEventsRequest(from_position=5))]
        assert [r.position for r in received] == [5, 6, 7]
        assert {r.stream for r in received} == {"agent:echo"}
