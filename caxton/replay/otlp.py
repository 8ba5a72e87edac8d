"""Recorded events as OTLP JSON: an `ExportTraceServiceRequest` in OTLP's JSON mapping.

The mapping is protobuf's JSON mapping with OTLP's two rules: trace and span ids are
lowercase hex (not base64), and enums are integers. 64-bit integers (the nanosecond
times, integer attributes) are strings. The same events give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from caxton.domain.events import Recorded
from caxton.replay.spans import AttributeValue, Span, SpanKind, SpanStatus, spans_of

SERVICE_NAME = "caxton"
SCOPE_NAME = "caxton"

_KINDS: dict[SpanKind, int] = {
    "internal": 1,
    "server": 2,
    "client": 3,
    "producer": 4,
    "consumer": 5,
}
_STATUS: dict[SpanStatus, int] = {"unset": 0, "ok": 1, "error": 2}


def otlp_json(records: Iterable[Recorded], *, service_name: str = SERVICE_NAME) -> bytes:
    """Every span the events make, as one OTLP/JSON trace export request (UTF-8)."""
    return spans_json(spans_of(records), service_name=service_name)


def spans_json(spans: Iterable[Span], *, service_name: str = SERVICE_NAME) -> bytes:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_key_value("service.name", service_name)]},
                "scopeSpans": [
                    {
                        "scope": {"name": SCOPE_NAME},
                        "spans": [_span(span) for span in spans],
                    }
                ],
            }
        ]
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _span(span: Span) -> dict[str, Any]:
    data: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.parent_span_id:
        data["parentSpanId"] = span.parent_span_id
    data.update(
        {
            "name": span.name,
            "kind": _KINDS[span.kind],
            "startTimeUnixNano": str(span.start_ns),
            "endTimeUnixNano": str(span.end_ns),
            "attributes": [_key_value(k, v) for k, v in span.attributes],
        }
    )
    if span.events:
        data["events"] = [
            {
                "timeUnixNano": str(event.time_ns),
                "name": event.name,
                "attributes": [_key_value(k, v) for k, v in event.attributes],
            }
            for event in span.events
        ]
    if span.status != "unset":
        status: dict[str, Any] = {"code": _STATUS[span.status]}
        if span.status_message:
            status["message"] = span.status_message
        data["status"] = status
    return data


def _key_value(key: str, value: AttributeValue) -> dict[str, Any]:
    return {"key": key, "value": _any_value(value)}


def _any_value(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}
