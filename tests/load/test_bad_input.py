"""Bad input to a live server: Hypothesis-made ACL messages and raw protobuf payloads get a
clear error status each, the server stays up, and the log holds nothing but what was
validly accepted; invalid or hostile WebAssembly uploads are refused at deploy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caxton.client import CaxtonClient, CaxtonError, InvalidArgument
from caxton.domain.acl import Performative
from caxton.domain.events import AgentDeployed, MessageSent
from caxton.shell.api.generated.caxton import v1
from tests.e2e.conftest import ServerProcess
from tests.load.conftest import history, start_server
from tests.support import RawCodec, wat

pytestmark = [pytest.mark.slow, pytest.mark.load]

EXAMPLES = 150
# Statuses that say what was wrong; INTERNAL and UNKNOWN would mean an unhandled error.
CLEAR = {
    Status.INVALID_ARGUMENT,
    Status.NOT_FOUND,
    Status.ALREADY_EXISTS,
    Status.RESOURCE_EXHAUSTED,
    Status.FAILED_PRECONDITION,
    Status.OUT_OF_RANGE,
}
UNARY = {
    "/caxton.v1.MessageService/Send": v1.SendReply,
    "/caxton.v1.AgentService/Deploy": v1.AgentInfo,
    "/caxton.v1.AgentService/GetAgent": v1.AgentInfo,
    "/caxton.v1.AgentService/ListAgents": v1.ListAgentsReply,
    "/caxton.v1.AgentService/StopAgent": v1.AgentInfo,
    "/caxton.v1.AgentService/RemoveAgent": v1.RemoveAgentReply,
    "/caxton.v1.AgentService/GetComponent": v1.ComponentBytes,
    "/caxton.v1.ConversationService/ListConversations": v1.ListConversationsReply,
    "/caxton.v1.ConversationService/GetConversation": v1.ConversationInfo,
    "/caxton.v1.EventService/GetLogInfo": v1.LogInfo,
}


class Live:
    """One server for the module, and what the tests had accepted by it."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.accepted: set[str] = set()
        self.deployed = {"echo", "sink"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    server = start_server(tmp_path_factory.mktemp("bad-input") / "data")

    async def deploy() -> None:
        async with CaxtonClient(server.address) as client:
            await client.deploy(wat("reply"), "echo", timeout_ms=20)
            await client.deploy(wat("silent"), "sink", timeout_ms=20)

    asyncio.run(deploy())
    try:
        yield Live(server)
    finally:
        assert server.process is not None
        alive = server.process.poll() is None
        server.kill()
        assert alive, "the server died:\n" + "".join(server.lines[-20:])


# --- ACL messages ---------------------------------------------------------------

PERFORMATIVES = [p.value for p in Performative]
deep_json = st.integers(100, 200_000).map(lambda n: "[" * n + "]" * n)
contents = st.one_of(
    st.just("{}"),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=10), max_size=4).map(
        json.dumps
    ),
    st.text(max_size=200),  # mostly not JSON
    deep_json,
    st.integers(1 << 20, (1 << 20) + 100).map(lambda n: json.dumps("x" * n)),  # > 1 MiB
)
envelopes = st.fixed_dictionaries(
    {
        "to": st.lists(
            st.sampled_from(["echo", "sink", "nobody", "capability:none", "client:x", ""])
            | st.text(max_size=30),
            max_size=4,
        ),
        "performative": st.sampled_from(PERFORMATIVES) | st.text(max_size=20),
        "content": contents,
        "language": st.sampled_from(["json", "", "text"]) | st.text(max_size=10),
        "protocol": st.sampled_from(["", "fipa-request", "fipa-contract-net"])
        | st.text(max_size=20),
        "conversation_id": st.just("") | st.text(max_size=40),
        "reply_by": st.none() | st.integers(-(1 << 63), (1 << 63) - 1),
        "message_id": st.just("") | st.text(max_size=40),
    }
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(envelope=envelopes)
def test_any_acl_message_is_accepted_or_refused_with_a_reason(
    live: Live, envelope: dict[str, Any]
) -> None:
    asyncio.run(_send(live, envelope))


async def _send(live: Live, envelope: dict[str, Any]) -> None:
    async with CaxtonClient(live.server.address, timeout=30) as client:
        to = envelope.pop("to")
        try:
            result = await client.send(to, **envelope)
        except InvalidArgument as e:
            assert str(e) and "\n" not in str(e) and "Traceback" not in str(e), str(e)
            return
        except CaxtonError as e:
            raise AssertionError(f"{type(e).__name__}: {e} for {to} {envelope}") from None
        live.accepted.add(result.message_id)


# --- raw protobuf payloads --------------------------------------------------------


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (short payloads only)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


payloads = st.one_of(
    st.binary(max_size=300),  # random bytes
    st.binary(min_size=1, max_size=50).map(  # invalid UTF-8 in the envelope's performative
        lambda b: _field(1, _field(2, b"\xff\xfe" + b[:40]) + _field(3, b"echo"))
    ),
    st.sampled_from(  # valid messages of the wrong type
        [
            bytes(v1.DeployRequest(name="x", component=b"\0asm")),
            bytes(v1.SendRequest(message=v1.AclEnvelope(performative="inform"), wait_ms=-5)),
            bytes(v1.StreamEventsRequest(from_position=-1)),
            bytes(v1.GetAgentRequest(name="echo" * 100)),
        ]
    ),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(sorted(UNARY)), payload=payloads)
def test_any_protobuf_payload_gets_a_clear_status(live: Live, path: str, payload: bytes) -> None:
    asyncio.run(_raw(live, path, payload))


async def _raw(live: Live, path: str, payload: bytes) -> None:
    host, port = live.server.address.rsplit(":", 1)
    channel = Channel(host, int(port), codec=RawCodec())
    try:
        async with channel.request(path, Cardinality.UNARY_UNARY, bytes, bytes) as stream:
            await stream.send_message(payload, end=True)
            try:
                reply = await stream.recv_message()
            except GRPCError as e:
                assert e.status in CLEAR, f"{path} {payload!r}: {e.status.name}: {e.message}"
                assert e.message and "\n" not in e.message, e.message
                return
    finally:
        channel.close()
    assert reply is not None
    if path.endswith("/Send"):
        live.accepted.add(UNARY[path]().parse(reply).message_id)
    if path.endswith(("/StopAgent", "/RemoveAgent", "/Deploy")):
        raise AssertionError(f"{path} accepted random bytes {payload!r}")


# --- the log afterwards -------------------------------------------------------------


def test_the_log_holds_only_what_was_accepted(live: Live) -> None:
    async def check() -> None:
        async with CaxtonClient(live.server.address) as client:
            recorded = await history(client)
            agents = {a.name for a in await client.agents()}
        assert agents == live.deployed
        deployed = {r.event.agent for r in recorded if isinstance(r.event, AgentDeployed)}
        assert deployed == live.deployed
        known = set(live.accepted)
        for r in recorded:  # in log order: each message was accepted, or caused by one that was
            if isinstance(r.event, MessageSent):
                message = r.event.message
                assert message.id in known or r.event.cause in known, message
                known.add(message.id)

    asyncio.run(check())


# --- WebAssembly uploads ------------------------------------------------------------


@pytest.mark.parametrize(
    ("component", "reason"),
    [
        (b"", "not a WebAssembly file"),
        (b"#!/bin/sh\nrm -rf /\n", "not a WebAssembly file"),
        (wat("core-module"), "a core WebAssembly module, not a component"),
        (wat("silent")[:40], "does not compile"),
        (wat("no-handle"), "missing export 'handle'"),
        (wat("foreign-import"), "outside the caxton:agent world"),
        (wat("mistyped"), "imports 'send' as func(u32) -> u64"),
        (wat("huge-memory"), "declares a memory of 2,500.0 MiB at start"),
    ],
    ids=[
        "empty",
        "shell-script",
        "core-module",
        "truncated",
        "no-handle",
        "wrong-world",
        "mistyped-export",
        "huge-memory",
    ],
)
def test_invalid_or_hostile_uploads_are_refused_at_deploy(
    live: Live, component: bytes, reason: str
) -> None:
    async def deploy() -> None:
        async with CaxtonClient(live.server.address) as client:
            with pytest.raises(InvalidArgument) as refused:
                await client.deploy(component, "hostile", filename="hostile.wasm")
            assert reason in str(refused.value), str(refused.value)
            assert str(refused.value).startswith("hostile.wasm: ")
            assert "hostile" not in {a.name for a in await client.agents()}

    asyncio.run(deploy())
