"""The live span exporter: a real node's conversation as spans, in memory, over OTLP/HTTP to
a real receiver on loopback, and with no collector listening at all."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from caxton.domain.acl import AclMessage, Performative
from caxton.replay.otlp import otlp_json
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.exporter import LiveExporter, make_exporter
from caxton.shell.wasm import WasmHost
from tests.support import free_port, wat

BIDDERS = ("bidder-a", "bidder-b", "bidder-c")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    log = await EventLog.open(str(tmp_path / "events.db"))
    host = WasmHost(tmp_path / "components")
    running = Node(log=log, host=host, clock=SystemClock(), node_id="node-traces")
    await running.start()
    for name in BIDDERS:
        await running.deploy(
            DeploySpec(name=name, component=wat("reply"), capabilities=("bidding",))
        )
    try:
        yield running
    finally:
        await running.shutdown()
        await log.close()
        host.close()


def cfp() -> AclMessage:
    return AclMessage(
        id="",
        performative=Performative.CFP,
        sender="",
        receivers=("capability:bidding",),
        content='{"item": "lamp"}',
    )


async def run_conversation(node: Node, exporter: LiveExporter) -> str:
    node.observers.append(exporter.feed)  # as the server does: committed events, in order
    exporter.start()
    result = await node.send(cfp())
    await _answered(node, result.conversation_id, len(BIDDERS))
    await exporter.flush(node.world.position)
    return result.conversation_id


async def test_a_three_agent_conversation_is_one_trace_shaped_like_its_causality(
    node: Node,
) -> None:
    memory = InMemorySpanExporter()
    exporter = LiveExporter(node.log, memory)

    await run_conversation(node, exporter)
    await exporter.close()

    spans = memory.get_finished_spans()
    assert len({s.context.trace_id for s in spans}) == 1
    by_id = {s.context.span_id: s for s in spans}
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "send capability:bidding" and root.kind.name == "PRODUCER"
    for bidder in BIDDERS:
        process = _one(spans, f"process {bidder}")
        deliver = _one(spans, f"deliver {bidder}")
        assert process.parent is not None and process.parent.span_id == root.context.span_id
        assert deliver.parent is not None and deliver.parent.span_id == root.context.span_id
        (reply,) = [
            s
            for s in spans
            if s.name == "send client"
            and s.parent is not None
            and s.parent.span_id == process.context.span_id
        ]
        assert reply.attributes is not None
        assert reply.attributes["messaging.caxton.performative"] == "inform"
        assert reply.attributes["messaging.caxton.sender"] == bidder
        assert process.attributes is not None
        assert process.attributes["messaging.system"] == "caxton"
        assert process.attributes["messaging.operation.type"] == "process"
        assert process.attributes["messaging.caxton.performative"] == "cfp"
        assert int(str(process.attributes["caxton.wasm.duration_us"])) > 0
    assert all(s.parent is None or s.parent.span_id in by_id for s in spans)


async def test_the_live_export_and_a_later_export_agree_on_every_id(node: Node) -> None:
    memory = InMemorySpanExporter()
    exporter = LiveExporter(node.log, memory)
    first = node.world.position + 1

    await run_conversation(node, exporter)
    await exporter.close()

    later = json.loads(otlp_json(await node.log.read(from_position=first)))
    exported = {
        (s["traceId"], s["spanId"], s.get("parentSpanId", ""), s["name"])
        for s in later["resourceSpans"][0]["scopeSpans"][0]["spans"]
    }
    live = {
        (
            f"{s.context.trace_id:032x}",
            f"{s.context.span_id:016x}",
            f"{s.parent.span_id:016x}" if s.parent else "",
            s.name,
        )
        for s in memory.get_finished_spans()
    }
    assert live == exported


async def test_spans_arrive_intact_at_a_real_otlp_http_receiver(node: Node) -> None:
    received: list[ExportTraceServiceRequest] = []
    receiver, port = await _otlp_receiver(received)
    memory = InMemorySpanExporter()
    first = node.world.position + 1
    try:
        exporter = LiveExporter(
            node.log, OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
        )
        await run_conversation(node, exporter)
        await exporter.close()
        same = LiveExporter(node.log, memory)
        same.start(from_position=first)
        await same.flush(node.world.position)
        await same.close()
    finally:
        receiver.close()
        await receiver.wait_closed()

    spans = [
        span
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    expected = {(s.context.span_id, s.name) for s in memory.get_finished_spans()}
    assert {(int.from_bytes(s.span_id, "big"), s.name) for s in spans} == expected
    resource = received[0].resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "caxton"
    process = next(s for s in spans if s.name == "process bidder-a")
    attributes = {a.key: a.value for a in process.attributes}
    assert attributes["messaging.caxton.performative"].string_value == "cfp"


async def test_with_no_collector_listening_handling_goes_on_and_spans_are_dropped(
    node: Node,
) -> None:
    nowhere = make_exporter("otlp-grpc", f"http://127.0.0.1:{free_port()}")
    assert nowhere is not None
    exporter = LiveExporter(node.log, nowhere, max_queue=50)
    node.observers.append(exporter.feed)
    exporter.start()

    started = time.monotonic()
    for _ in range(20):
        result = await node.send(cfp())
        await _answered(node, result.conversation_id, len(BIDDERS))
    handling = time.monotonic() - started
    closing = time.monotonic()
    await exporter.close(timeout=1)

    assert handling < 10  # nothing waited for the collector (each export takes up to 5 s)
    assert time.monotonic() - closing < 8
    assert exporter.exported == 0 and exporter.dropped > 0


def _one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


async def _answered(node: Node, conversation_id: str, replies: int) -> None:
    """Waits on the log until the conversation holds `replies` sends to the client."""
    from caxton.domain.events import MessageSent

    seen = 0
    async for recorded in node.log.follow(from_position=1, conversation_id=conversation_id):
        event = recorded.event
        if isinstance(event, MessageSent) and event.message.receivers[0].startswith("client:"):
            seen += 1
            if seen == replies:
                return


async def _otlp_receiver(
    received: list[ExportTraceServiceRequest],
) -> tuple[asyncio.Server, int]:
    """A minimal OTLP/HTTP receiver: decodes each POSTed protobuf body, answers 200."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1)
                    for line in head.decode("latin-1").split("\r\n")[1:]
                    if ": " in line
                )
                length = int(next(v for k, v in headers.items() if k.lower() == "content-length"))
                body = await reader.readexactly(length)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(request)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    return server, port
