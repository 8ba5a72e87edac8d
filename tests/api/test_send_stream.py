"""SendStream: many one-way sends over one stream, acknowledged in batches, through the
server's own codec, limits and token check on a real loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from grpclib.health.check import ServiceStatus

from caxton.client import (
    Busy,
    CaxtonClient,
    CaxtonError,
    InvalidArgument,
    SendResult,
    Unauthenticated,
)
from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import MessageSent
from caxton.shell.api.generated.caxton import v1
from caxton.shell.api.limits import MAX_REQUEST_BYTES
from caxton.shell.api.service import StreamedSends, services_for
from caxton.shell.client import STREAM_BATCH
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import Node
from caxton.shell.runtime.node import SendResult as NodeSendResult
from caxton.shell.server import api_server
from caxton.shell.store import EventLog
from caxton.shell.wasm import WasmHost
from tests.support import free_port, wat

TOKEN = "s3cret"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, node_class: type[Node] = Node) -> AsyncIterator[tuple[Node, str]]:
    """A node on a real SQLite file behind the server's API (codec, limits, token)."""
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    node = node_class(log=log, host=host, clock=SystemClock(), node_id="node-api")
    await node.start()
    server = api_server(services_for(node, log), ServiceStatus(), token=TOKEN)
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


def inform(to: str, content: str = "{}", *, id: str = "") -> AclMessage:
    return AclMessage(
        id=id, performative=Performative.INFORM, sender="", receivers=(to,), content=content
    )


async def logged_sends(node: Node) -> list[MessageSent]:
    return [r.event for r in await node.log.read() if isinstance(r.event, MessageSent)]


async def test_each_message_of_a_stream_is_accepted_and_answered_in_the_order_sent(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (node, address), CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "sink", mailbox=10_000)
        messages = [inform("sink", f'{{"n": {i}}}') for i in range(600)]

        results = await client.send_many(messages)

        assert all(isinstance(r, SendResult) for r in results)
        sent = {m.message.id: m for m in await logged_sends(node)}
        for i, result in enumerate(results):
            assert isinstance(result, SendResult)
            assert result.deliveries == ("sink#0",)
            logged = sent[result.message_id].message
            assert logged.content == f'{{"n": {i}}}'
            assert logged.conversation_id == result.conversation_id


async def test_a_refused_message_gets_the_error_send_would_raise_and_the_stream_goes_on(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (node, address), CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "sink", mailbox=10_000)
        with pytest.raises(InvalidArgument) as unary:
            await client.send("sink", "inform", "{not json")

        results = await client.send_many(
            [inform("sink"), inform("sink", "{not json"), inform("nobody"), inform("sink")]
        )

        accepted, refused, dead, last = results
        assert isinstance(refused, InvalidArgument)
        assert str(refused) == str(unary.value)
        assert isinstance(accepted, SendResult) and isinstance(last, SendResult)
        assert isinstance(dead, SendResult) and dead.dead_letters[0][0] == "nobody"
        logged = await logged_sends(node)
        assert {m.message.id for m in logged} >= {accepted.message_id, dead.message_id}
        assert "{not json" not in {m.message.content for m in logged}


async def test_a_message_over_an_agents_mailbox_is_refused_as_busy(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, address), CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "tiny", mailbox=1)

        results = await client.send_many(inform("tiny") for _ in range(200))

        assert any(isinstance(r, SendResult) for r in results)
        refusals = [r for r in results if isinstance(r, CaxtonError)]
        assert refusals and all(isinstance(r, Busy) for r in refusals)


async def test_a_message_id_is_accepted_once_across_a_stream_and_unary_sends(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (node, address), CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "sink", mailbox=10_000)
        first = await client.send("sink", "inform", {}, message_id="once-1")

        results = await client.send_many([inform("sink", id="once-1"), inform("sink", id="once-1")])

        assert [r.conversation_id for r in results if isinstance(r, SendResult)] == [
            first.conversation_id
        ] * 2
        assert [m.message.id for m in await logged_sends(node)] == ["once-1"]


async def test_the_stream_needs_the_token(tmp_path: Path) -> None:
    async with serving(tmp_path) as (node, address), CaxtonClient(address, token="wrong") as client:
        with pytest.raises(Unauthenticated):
            await client.send_many([inform("sink")])
        assert await logged_sends(node) == []


async def test_a_streamed_message_may_be_as_large_as_a_send(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, address), CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "sink")
        content = '"' + "x" * (2 * MAX_REQUEST_BYTES) + '"'  # over the limit of other requests

        (result,) = await client.send_many([inform("sink", content)])

        assert isinstance(result, SendResult)


async def test_a_batch_over_the_list_limit_ends_the_stream_after_the_acks_before_it(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as (node, address), CaxtonClient(address, token=TOKEN) as client:
        await client.deploy(wat("silent"), "sink", mailbox=10_000)
        crowd = AclMessage(
            id="", performative=Performative.INFORM, sender="", receivers=("a",) * 5_000
        )
        first_batch = [inform("sink") for _ in range(STREAM_BATCH)]

        with pytest.raises(InvalidArgument, match="more than 4096 items") as refused:
            await client.send_many([*first_batch, crowd, inform("sink")])

        assert f"({STREAM_BATCH} of " in str(refused.value)
        assert len(await logged_sends(node)) == STREAM_BATCH


class GatedNode(Node):
    """A real node whose client sends wait at a gate, counting how many wait at once."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.waiting = 0
        self.most_waiting = 0
        self.window_full = asyncio.Event()
        self.window = 0

    async def send_many(self, messages: Sequence[AclMessage]) -> list[NodeSendResult | Exception]:
        self.waiting += len(messages)
        self.most_waiting = max(self.most_waiting, self.waiting)
        if self.waiting >= self.window:
            self.window_full.set()
        await self.gate.wait()
        self.waiting -= len(messages)
        return await super().send_many(messages)


async def test_a_stream_holds_at_most_its_window_of_unacknowledged_messages(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, GatedNode) as (node, _):
        assert isinstance(node, GatedNode)
        node.window = 8
        envelope = v1.AclEnvelope(performative="inform", receivers=["nobody"], content="{}")

        async def requests() -> AsyncIterator[v1.StreamedSend]:
            for _ in range(8):
                yield v1.StreamedSend(messages=[envelope] * 5)

        async def open_gate() -> None:
            await node.window_full.wait()
            node.gate.set()

        opening = asyncio.create_task(open_gate())
        acks = [
            ack
            async for batch in StreamedSends(node, window=8).acknowledged(requests())
            for ack in batch.acks
        ]
        await opening

        assert node.most_waiting == 8
        assert sorted(a.index for a in acks) == list(range(40))
        assert all(a.accepted is not None for a in acks)
