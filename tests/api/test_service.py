"""The gRPC API over a real loopback socket, through the Python client."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.client import Channel
from grpclib.server import Server

from caxton.client import (
    AlreadyExists,
    CaxtonClient,
    InvalidArgument,
    InvokeTimeout,
    NotFound,
    ServerUnavailable,
    Unauthenticated,
)
from caxton.domain.conversations import RETIRE_AFTER_MS
from caxton.domain.events import MessageSent
from caxton.shell.api.auth import install_token_check
from caxton.shell.api.generated.caxton import v1
from caxton.shell.api.service import services_for
from caxton.shell.runtime.clock import Clock, SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost
from tests.support import SteppedClock, free_port, wat

TOKEN = "s3cret"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, clock: Clock, token: str = "") -> AsyncIterator[tuple[Node, str]]:
    """A node on a real SQLite file behind the API on a free loopback port."""
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    node = Node(log=log, host=host, clock=clock, node_id="node-api")
    await node.start()
    server = Server(services_for(node, log))
    if token:
        install_token_check(server, token)
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        yield node, f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
        await node.shutdown()
        await log.close()
        host.close()


@pytest.fixture
async def address(tmp_path: Path) -> AsyncIterator[str]:
    async with serving(tmp_path, SystemClock(), TOKEN) as (_, where):
        yield where


@pytest.fixture
async def client(address: str) -> AsyncIterator[CaxtonClient]:
    async with CaxtonClient(address, token=TOKEN) as c:
        yield c


async def test_deploy_list_status_invoke_and_remove(client: CaxtonClient) -> None:
    info = await client.deploy(wat("reply"), "echo", replicas=3, capabilities=["echoing"])
    assert info.status_line == "✓ Running (3/3 instances healthy)"
    assert [a.name for a in await client.agents()] == ["echo"]

    reply = await client.invoke("echo", {"hello": "world"}, timeout=5)
    assert reply.performative.value == "inform"
    assert reply.sender == "echo"

    stopped = await client.stop("echo")
    assert stopped.status == "stopped"
    await client.remove("echo")
    assert await client.agents() == []


async def test_events_stream_in_log_order_and_filter_by_conversation(
    client: CaxtonClient,
) -> None:
    await client.deploy(wat("reply"), "echo")
    result = await client.send("echo", "request", {"n": 1}, wait_ms=5_000)

    positions = [r.position async for r in client.events()]
    assert positions == sorted(positions) and positions[0] == 1
    mine = [r async for r in client.events(conversation_id=result.conversation_id)]
    sent = [r.event for r in mine if isinstance(r.event, MessageSent)]
    assert [m.message.performative.value for m in sent] == ["request", "inform"]
    assert {r.stream for r in mine} == {f"conversation:{result.conversation_id}"}


async def test_conversations_list_their_protocol_and_state(client: CaxtonClient) -> None:
    await client.deploy(wat("reply"), "echo")
    result = await client.send("echo", "request", {}, protocol="fipa-request", wait_ms=5_000)

    found = {c.id: c for c in await client.conversations()}

    conversation = found[result.conversation_id]
    assert conversation.protocol == "fipa-request"
    assert conversation.state == "done"
    assert conversation.message_count == 2
    assert set(conversation.participants) >= {"echo"}


async def test_bad_input_gets_a_clear_error(client: CaxtonClient) -> None:
    with pytest.raises(InvalidArgument, match="not a WebAssembly file"):
        await client.deploy(b"hello", "x", filename="agent.wasm")
    with pytest.raises(InvalidArgument, match="missing export 'handle'"):
        await client.deploy(wat("no-handle"), "x", filename="agent.wasm")
    with pytest.raises(InvalidArgument, match="unknown performative 'shout'"):
        await client.send("echo", "shout", {})
    with pytest.raises(InvalidArgument, match="content: not valid JSON"):
        await client.send("echo", "request", "{not json")
    with pytest.raises(InvalidArgument, match="not a valid agent name"):
        await client.deploy(wat("silent"), "no spaces allowed")
    with pytest.raises(NotFound, match="no agent named 'ghost'"):
        await client.agent("ghost")


async def test_a_component_is_named_sha256_and_hex_and_fetched_by_either_form(
    address: str,
) -> None:
    wasm = wat("reply")
    hex_digits = hashlib.sha256(wasm).hexdigest()
    async with CaxtonClient(address, token=TOKEN) as client:
        deployed = await client.deploy(wasm, "echo")
        listed = await client.agents()

        assert deployed.component_digest == listed[0].component_digest == f"sha256:{hex_digits}"
        assert await client.component(hex_digits) == wasm  # as the AgentDeployed event has it
        assert await client.component(f"sha256:{hex_digits}") == wasm
        with pytest.raises(NotFound, match="no component"):
            await client.component("sha256:" + "0" * 64)
    host, port = address.rsplit(":", 1)
    async with Channel(host, int(port)) as channel:
        stub = v1.AgentServiceStub(channel, metadata={"authorization": f"Bearer {TOKEN}"})
        fetched = await stub.get_component(v1.GetComponentRequest(digest=hex_digits))
    assert fetched.digest == f"sha256:{hex_digits}"


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256:",
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 65,
        "sha256:" + "A" * 64,
        "sha512:" + "0" * 64,
        "sha256:sha256:" + "0" * 64,
        "../" + "0" * 61,
        "0" * 100_000,
    ],
)
async def test_a_malformed_digest_is_an_invalid_argument_that_quotes_little(
    client: CaxtonClient, digest: str
) -> None:
    with pytest.raises(InvalidArgument, match="digest: expected 'sha256:'") as refused:
        await client.component(digest)
    assert len(str(refused.value)) < 200


async def test_deploying_a_taken_name_needs_replace(client: CaxtonClient) -> None:
    await client.deploy(wat("silent"), "echo")
    with pytest.raises(AlreadyExists, match="--replace"):
        await client.deploy(wat("silent"), "echo")
    info = await client.deploy(wat("reply"), "echo", replace=True)
    assert info.status_line.startswith("✓ Running")


async def test_invoke_times_out_when_no_reply_comes(client: CaxtonClient) -> None:
    await client.deploy(wat("silent"), "quiet")
    with pytest.raises(InvokeTimeout, match=r"did not reply within 0\.2s"):
        await client.invoke("quiet", {}, timeout=0.2)


async def test_a_wrong_token_is_refused(address: str) -> None:
    async with CaxtonClient(address, token="wrong") as c:
        with pytest.raises(Unauthenticated, match="token"):
            await c.agents()
    async with CaxtonClient(address) as c:
        with pytest.raises(Unauthenticated):
            await c.agents()


async def test_no_server_is_a_clear_error() -> None:
    async with CaxtonClient(f"127.0.0.1:{free_port()}") as c:
        with pytest.raises(ServerUnavailable, match="no Caxton server answers"):
            await c.agents()


async def test_a_conversation_retired_from_the_live_world_is_answered_from_the_log(
    tmp_path: Path,
) -> None:
    clock = SteppedClock()
    async with serving(tmp_path, clock) as (node, where):
        async with CaxtonClient(where) as client:
            await client.deploy(wat("reply"), "echo")
            first = await client.send(
                "echo", "request", "{}", protocol="fipa-request", wait_ms=5_000
            )
            for _ in range(2):  # two changes of generation: the first conversation retires
                clock.ms += RETIRE_AFTER_MS
                await client.send("echo", "inform", "{}")
            later = await client.send(
                "echo", "request", "{}", protocol="fipa-request", wait_ms=5_000
            )

            recent = await client.conversations(since_ms=clock.ms - 1_000)  # the world
            everything = await client.conversations()  # back to the start: the log
            newest = await client.conversations(limit=1)
            old = await client.conversation(first.conversation_id)
            with pytest.raises(NotFound):
                await client.conversation("never-was")

        assert first.conversation_id not in node.world.conversations
        assert later.conversation_id in {c.id for c in recent} and not recent.truncated
        assert first.conversation_id not in {c.id for c in recent}
        assert len(everything) == 4 and not everything.truncated  # two informs between
        assert everything[0].id == first.conversation_id and everything[0].state == "done"
        assert {c.id: c.state for c in everything}[later.conversation_id] == "done"
        assert [c.id for c in newest] == [later.conversation_id] and newest.truncated
        assert (old.state, old.message_count, old.protocol) == ("done", 2, "fipa-request")
