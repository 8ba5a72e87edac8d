"""The span shipper (what the span process runs): a real node's conversation as spans, in
memory, over OTLP/HTTP to a real receiver on loopback, and with no collector listening."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import MessageSent
from caxton.shell.config import ConfigError, load_config
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.node import DeploySpec, Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.exporter import (
    Explained,
    SpanShipper,
    TraceExport,
    make_exporter,
    otlp_url,
)
from caxton.shell.wasm import WasmHost
from tests.support import free_port, wat
from tests.telemetry.receiver import OtlpReceiver

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


async def run_conversation(node: Node) -> str:
    """A call for proposals to three bidders, until their three replies are committed."""
    result = await node.send(cfp())
    await answered(node, result.conversation_id, len(BIDDERS))
    return result.conversation_id


async def ship(node: Node, shipper: SpanShipper, *, first: int) -> None:
    """Ships the spans of the log from `first`, as the span process does with each page
    (the export in a thread: the receiver of some tests runs on this loop)."""
    spans = shipper.build(await node.log.read(from_position=first))
    await asyncio.to_thread(shipper.export, spans)


async def test_a_three_agent_conversation_is_one_trace_shaped_like_its_causality(
    node: Node,
) -> None:
    memory = InMemorySpanExporter()
    first = node.world.position + 1

    await run_conversation(node)
    await ship(node, SpanShipper(memory), first=first)

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


async def test_sampling_keeps_or_drops_whole_traces_by_their_id(node: Node) -> None:
    first = node.world.position + 1
    for _ in range(20):
        await run_conversation(node)
    every, some = InMemorySpanExporter(), InMemorySpanExporter()

    await ship(node, SpanShipper(every), first=first)
    await ship(node, SpanShipper(some, sampling=0.5), first=first)

    traces = {s.context.trace_id for s in every.get_finished_spans()}
    kept = {s.context.trace_id for s in some.get_finished_spans()}
    assert kept and kept < traces
    assert {s.context.span_id for s in some.get_finished_spans()} == {
        s.context.span_id for s in every.get_finished_spans() if s.context.trace_id in kept
    }


async def test_spans_arrive_intact_at_a_real_otlp_http_receiver_given_its_base_url(
    node: Node,
) -> None:
    memory = InMemorySpanExporter()
    first = node.world.position + 1
    await run_conversation(node)
    async with OtlpReceiver() as receiver:
        await ship(node, SpanShipper(make_otlp("otlp-http", receiver.base)), first=first)
    await ship(node, SpanShipper(memory), first=first)

    assert set(receiver.paths) == {"/v1/traces"}  # as OTEL_EXPORTER_OTLP_ENDPOINT: a base
    spans = receiver.spans
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
        shipper = SpanShipper(make_otlp("otlp-http", receiver.base))

        async def conversation() -> None:
            first = node.world.position + 1
            await run_conversation(node)
            await ship(node, shipper, first=first)

        for _ in range(3):  # three batches, one outage
            await conversation()
        receiver.status = 200
        await conversation()
        receiver.status = 503
        await conversation()
        shipper.shutdown()

    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "caxton.telemetry"]
    export, dropping = f"span export to {receiver.base}/v1/traces", "dropping spans until it works"
    assert said == [
        ("WARNING", f"{export} failed: HTTP 404 Not Found; {dropping}"),
        ("INFO", f"{export} works again"),
        ("WARNING", f"{export} failed: HTTP 503 Service Unavailable; {dropping}"),
    ]
    assert shipper.exported > 0 and shipper.dropped > 0


async def test_a_collector_nobody_listens_for_is_named_with_the_connection_error(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    shipper = SpanShipper(make_otlp("otlp-http", url))
    first = node.world.position + 1

    await run_conversation(node)
    await ship(node, shipper, first=first)

    (warning,) = [r.getMessage() for r in caplog.records if r.name == "caxton.telemetry"]
    assert warning.startswith(f"span export to {url} failed: cannot connect (")
    assert "refused" in warning
    assert shipper.exported == 0 and shipper.dropped > 0


def make_otlp(kind: TraceExport, endpoint: str) -> SpanExporter:
    exporter = make_exporter(kind, endpoint)
    assert exporter is not None
    return exporter


def test_a_grpc_collector_nobody_listens_for_is_named_with_the_status_it_got() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    exporter = make_otlp("otlp-grpc", url)
    span = TracerProvider().get_tracer("test").start_span("lost")
    span.end()
    assert isinstance(span, ReadableSpan)  # the SDK's span, typed as the API's

    assert exporter.export([span]) is SpanExportResult.FAILURE
    assert isinstance(exporter, Explained) and exporter.url == url
    assert exporter.failure.startswith("gRPC UNAVAILABLE (") and "refused" in exporter.failure


def _one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


async def answered(node: Node, conversation_id: str, replies: int) -> None:
    """Waits on the log until the conversation holds `replies` sends to the client."""
    seen = 0
    async for recorded in node.log.follow(from_position=1, conversation_id=conversation_id):
        event = recorded.event
        if isinstance(event, MessageSent) and event.message.receivers[0].startswith("client:"):
            seen += 1
            if seen == replies:
                return


@pytest.mark.parametrize("endpoint", ["localhost:4318", "4318", "ftp://collector", "http://"])
def test_an_endpoint_that_is_not_an_http_url_is_refused_at_start(endpoint: str) -> None:
    with pytest.raises(ConfigError, match=r"otlp_endpoint: .* is not a URL"):
        load_config(None, traces="otlp-http", otlp_endpoint=endpoint)
    assert load_config(None, otlp_endpoint="https://collector/otlp").otlp_endpoint


def test_the_grpc_exporter_also_takes_host_and_port() -> None:
    assert load_config(None, traces="otlp-grpc", otlp_endpoint="collector:4317").otlp_endpoint
    with pytest.raises(ConfigError, match=r"otlp_endpoint: .* is not a URL"):
        load_config(None, traces="otlp-grpc", otlp_endpoint="collector:port")


async def test_in_a_cluster_each_span_is_exported_once_by_the_node_that_ended_it(
    node: Node,
) -> None:
    first = node.world.position + 1
    for _ in range(3):
        await run_conversation(node)
    # the same events as if two nodes had committed them in turn
    events = await node.log.read(from_position=first)
    shared = [replace(r, node=("n1", "n2")[r.position % 2]) for r in events]
    alone, on_n1, on_n2 = InMemorySpanExporter(), InMemorySpanExporter(), InMemorySpanExporter()
    for exporter, shipper in (
        (alone, SpanShipper(alone)),
        (on_n1, SpanShipper(on_n1, node="n1")),
        (on_n2, SpanShipper(on_n2, node="n2")),
    ):
        shipper.export(shipper.build(shared if exporter is not alone else events))

    def ids(exporter: InMemorySpanExporter) -> set[int]:
        return {s.context.span_id for s in exporter.get_finished_spans()}

    assert ids(on_n1) and ids(on_n2) and not ids(on_n1) & ids(on_n2)
    assert ids(on_n1) | ids(on_n2) == ids(alone)
