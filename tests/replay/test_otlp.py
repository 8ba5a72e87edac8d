"""OTLP JSON export: parses with the official opentelemetry-proto mapping, byte-identical."""

from __future__ import annotations

import base64
import json

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from caxton.replay.otlp import otlp_json
from caxton.replay.spans import spans_of
from tests.replay.traced_histories import P, TracedLog, contract_net


def parsed(data: bytes) -> ExportTraceServiceRequest:
    return json_format.Parse(data, ExportTraceServiceRequest())


def test_two_exports_of_the_same_events_are_byte_identical() -> None:
    log, _ = contract_net()

    assert otlp_json(log.recorded) == otlp_json(list(log.recorded))


def test_the_export_parses_as_an_export_trace_service_request() -> None:
    log, _ = contract_net()
    spans = spans_of(log.recorded)

    request = parsed(otlp_json(log.recorded))

    (resource_spans,) = request.resource_spans
    assert resource_spans.resource.attributes[0].key == "service.name"
    assert resource_spans.resource.attributes[0].value.string_value == "caxton"
    (scope,) = resource_spans.scope_spans
    assert scope.scope.name == "caxton"
    assert [s.name for s in scope.spans] == [s.name for s in spans]
    for proto, span in zip(scope.spans, spans, strict=True):
        assert proto.start_time_unix_nano == span.start_ns
        assert proto.end_time_unix_nano == span.end_ns
        assert {a.key for a in proto.attributes} == {k for k, _ in span.attributes}


def test_ids_are_hex_as_otlp_json_requires() -> None:
    """OTLP/JSON writes ids in hex where protobuf's JSON mapping expects base64; hex
    digits are base64 characters, so `Parse` reads them as base64. Encoding the parsed
    bytes back to base64 must give the hex text exactly, 32 and 16 digits long."""
    log, _ = contract_net()
    spans = spans_of(log.recorded)

    request = parsed(otlp_json(log.recorded))

    protos = request.resource_spans[0].scope_spans[0].spans
    for proto, span in zip(protos, spans, strict=True):
        assert base64.b64encode(proto.trace_id).decode() == span.trace_id
        assert base64.b64encode(proto.span_id).decode() == span.span_id
        assert len(bytes.fromhex(span.trace_id)) == 16 and len(bytes.fromhex(span.span_id)) == 8
        if span.parent_span_id:
            assert base64.b64encode(proto.parent_span_id).decode() == span.parent_span_id
        else:
            assert proto.parent_span_id == b""


def test_kinds_statuses_events_and_typed_attributes_survive_the_mapping() -> None:
    log = TracedLog()
    request = log.from_client(P.REQUEST, "crashy", "crashy#0")
    log.trap(request, "crashy")

    document = parsed(otlp_json(log.recorded))

    protos = {s.name: s for s in document.resource_spans[0].scope_spans[0].spans}
    send = protos["send crashy"]
    assert send.kind == ProtoSpan.SPAN_KIND_PRODUCER
    process = protos["process crashy"]
    assert process.kind == ProtoSpan.SPAN_KIND_CONSUMER
    assert process.status.code == Status.STATUS_CODE_ERROR
    assert process.status.message == "trap: unreachable"
    assert [e.name for e in process.events] == ["exception"]
    attributes = {a.key: a.value for a in process.attributes}
    assert attributes["caxton.wasm.duration_us"].int_value == 300
    assert attributes["messaging.system"].string_value == "caxton"
    assert protos["deliver crashy"].kind == ProtoSpan.SPAN_KIND_INTERNAL


def test_64_bit_integers_are_strings_and_enums_are_integers() -> None:
    log, _ = contract_net()

    document = json.loads(otlp_json(log.recorded))

    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert isinstance(span["startTimeUnixNano"], str)
    assert isinstance(span["kind"], int)
    position = next(a for a in span["attributes"] if a["key"] == "caxton.log.position")
    assert position["value"] == {"intValue": "1"}


def test_no_events_is_an_empty_but_valid_request() -> None:
    request = parsed(otlp_json([]))

    assert list(request.resource_spans[0].scope_spans[0].spans) == []
