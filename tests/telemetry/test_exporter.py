"""The live span exporter: a real node's conversation as spans, in memory, over OTLP/HTTP to
a real receiver on loopback, and with no collector listening at all."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from caxton.domain.acl import AclMessage, Performative
from caxton.replay.otlp import otlp_json
from caxton.shell.config import ConfigError, load_config
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.exporter import (
    Explained,
    LiveExporter,
    TraceExport,
    make_exporter,
    otlp_url,
)
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


async def test_spans_arrive_intact_at_a_real_otlp_http_receiver_given_its_base_url(
    node: Node,
) -> None:
    memory = InMemorySpanExporter()
    first = node.world.position + 1
    async with OtlpReceiver() as receiver:
        exporter = LiveExporter(node.log, make_otlp("otlp-http", receiver.base))
        await run_conversation(node, exporter)
        await exporter.close()
    same = LiveExporter(node.log, memory)
    same.start(from_position=first)
    await same.flush(node.world.position)
    await same.close()

    assert set(receiver.paths) == {"/v1/traces"}  # as OTEL_EXPORTER_OTLP_ENDPOINT: a base
    spans = [
        span
        for request in receiver.received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    expected = {(s.context.span_id, s.name) for s in memory.get_finished_spans()}
    assert {(int.from_bytes(s.span_id, "big"), s.name) for s in spans} == expected
    resource = receiver.received[0].resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "caxton"
    process = next(s for s in spans if s.name == "process bidder-a")
    attributes = {a.key: a.value for a in process.attributes}
    assert attributes["messaging.caxton.performative"].string_value == "cfp"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://collector/otlp", "https://collector/otlp/v1/traces"),
        ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
        ("", "http://127.0.0.1:4318/v1/traces"),
    ],
)
def test_the_endpoint_is_a_base_url_the_traces_path_goes_under(endpoint: str, url: str) -> None:
    assert otlp_url("otlp-http", endpoint, environ={}) == url


def test_without_an_endpoint_the_opentelemetry_variables_are_read() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318"}
    traces = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/custom"}

    assert otlp_url("otlp-http", "", environ=base) == "http://base:4318/v1/traces"
    assert otlp_url("otlp-http", "", environ=traces) == "http://t:4318/custom"  # as it is
    assert otlp_url("otlp-http", "http://flag:4318", environ=traces) == "http://flag:4318/v1/traces"
    assert otlp_url("otlp-grpc", "", environ=base) == "http://base:4318"
    assert otlp_url("otlp-grpc", "", environ={}) == "http://127.0.0.1:4317"


async def test_a_collector_that_refuses_the_spans_is_named_with_its_answer_once_per_change(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="caxton.telemetry")
    async with OtlpReceiver(status=404) as receiver:
        exporter = LiveExporter(node.log, make_otlp("otlp-http", receiver.base))
        for _ in range(3):  # three batches, one outage
            await run_conversation(node, exporter)
        receiver.status = 200
        await run_conversation(node, exporter)
        receiver.status = 503
        await run_conversation(node, exporter)
        await exporter.close()

    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "caxton.telemetry"]
    export, dropping = f"span export to {receiver.base}/v1/traces", "dropping spans until it works"
    assert said == [
        ("WARNING", f"{export} failed: HTTP 404 Not Found; {dropping}"),
        ("INFO", f"{export} works again"),
        ("WARNING", f"{export} failed: HTTP 503 Service Unavailable; {dropping}"),
    ]
    assert exporter.exported > 0 and exporter.dropped > 0


async def test_a_collector_nobody_listens_for_is_named_with_the_connection_error(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    exporter = LiveExporter(node.log, make_otlp("otlp-http", url))

    await run_conversation(node, exporter)
    await exporter.close()

    (warning,) = [r.getMessage() for r in caplog.records if r.name == "caxton.telemetry"]
    assert warning.startswith(f"span export to {url} failed: cannot connect (")
    assert "refused" in warning


def make_otlp(kind: TraceExport, endpoint: str) -> SpanExporter:
    exporter = make_exporter(kind, endpoint)
    assert exporter is not None
    return exporter


async def test_with_no_collector_listening_handling_goes_on_and_spans_are_dropped(
    node: Node,
) -> None:
    nowhere = make_otlp("otlp-grpc", f"http://127.0.0.1:{free_port()}")
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


def test_a_grpc_collector_nobody_listens_for_is_named_with_the_status_it_got() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    exporter = make_otlp("otlp-grpc", url)
    span = TracerProvider().get_tracer("test").start_span("lost")
    span.end()

    assert exporter.export([span]) is SpanExportResult.FAILURE
    assert isinstance(exporter, Explained) and exporter.url == url
    assert exporter.failure.startswith("gRPC UNAVAILABLE (") and "refused" in exporter.failure


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


class OtlpReceiver:
    """A minimal OTLP/HTTP receiver on loopback: decodes each protobuf body POSTed to
    /v1/traces and answers `status`; any other path gets 404, as from a real collector."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.port = free_port()
        self._server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OtlpReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1]
                headers = {
                    k.lower(): v for k, _, v in (line.partition(": ") for line in head[1:]) if v
                }
                body = await reader.readexactly(int(headers["content-length"]))
                self.paths.append(path)
                status = self.status if path == "/v1/traces" else 404
                if status == 200:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    self.received.append(request)
                reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-protobuf\r\n"
                    "Content-Length: 0\r\n\r\n".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("endpoint", ["localhost:4318", "4318", "ftp://collector", "http://"])
def test_an_endpoint_that_is_not_an_http_url_is_refused_at_start(endpoint: str) -> None:
    with pytest.raises(ConfigError, match=r"otlp_endpoint: .* is not a URL"):
        load_config(None, traces="otlp-http", otlp_endpoint=endpoint)
    assert load_config(None, otlp_endpoint="https://collector/otlp").otlp_endpoint


def test_the_grpc_exporter_also_takes_host_and_port() -> None:
    assert load_config(None, traces="otlp-grpc", otlp_endpoint="collector:4317").otlp_endpoint
    with pytest.raises(ConfigError, match=r"otlp_endpoint: .* is not a URL"):
        load_config(None, traces="otlp-grpc", otlp_endpoint="collector:port")
