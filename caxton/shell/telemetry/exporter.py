"""Span export: the SDK exporters for `--traces` and the shipper that feeds them.

`SpanShipper` turns committed events into spans with the same builder as `caxton events
export --format otlp-json` (`caxton.replay.spans`), converts the sampled ones to the SDK's
`ReadableSpan` and hands them in batches to an exporter (OTLP gRPC or HTTP, console). It
runs in the span process (`span_follower`), never on the server's event loop.

Where spans go follows OpenTelemetry's exporter conventions (`otlp_url`). A failing export
is logged when it starts failing (naming the URL and the HTTP status or connection error),
again if the reason changes (at most once a minute), and once when it works again.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event as SdkEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from caxton import __version__
from caxton.domain.events import Recorded
from caxton.replay.spans import Span, SpanBuilder

logger = logging.getLogger("caxton.telemetry")

TraceExport = Literal["none", "console", "otlp-grpc", "otlp-http"]
TRACE_EXPORTS: tuple[TraceExport, ...] = ("none", "console", "otlp-grpc", "otlp-http")
DEFAULT_ENDPOINTS = {"otlp-grpc": "http://127.0.0.1:4317", "otlp-http": "http://127.0.0.1:4318"}
TRACES_PATH = "/v1/traces"
"""What OTLP/HTTP puts under a base URL for traces."""
ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
BATCH = 512
EXPORT_TIMEOUT_S = 5.0
_REASON_CHARS = 300
_SAY_AGAIN_S = 60.0
"""Within one outage, a new reason is logged at most this often."""

_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
_SCOPE = InstrumentationScope("caxton", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_STATUS = {"unset": Status(StatusCode.UNSET), "ok": Status(StatusCode.OK)}


def otlp_url(kind: TraceExport, endpoint: str = "", *, environ: Mapping[str, str]) -> str:
    """Where spans go, by OpenTelemetry's rules. `endpoint` (`--otlp-endpoint`) and
    OTEL_EXPORTER_OTLP_ENDPOINT are base URLs: for OTLP/HTTP `/v1/traces` goes under their
    path (a path that already ends with it is kept, so a full traces URL works too);
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is. The flag wins over the variables.
    For OTLP/gRPC each names the collector's host and port, as it is."""
    if endpoint:
        base = endpoint
    elif traces := environ.get(TRACES_ENDPOINT_VARIABLE, ""):
        return traces
    else:
        base = environ.get(ENDPOINT_VARIABLE, "") or DEFAULT_ENDPOINTS[kind]
    if kind == "otlp-grpc":
        return base
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    return urlunsplit(
        parts._replace(path=path if path.endswith(TRACES_PATH) else path + TRACES_PATH)
    )


@runtime_checkable
class Explained(Protocol):
    """An exporter that says where it sends spans and why its last export failed."""

    url: str
    failure: str


def make_exporter(kind: TraceExport, endpoint: str = "") -> SpanExporter | None:
    """The SDK exporter for `--traces`; nothing is assumed to listen at the endpoint."""
    if kind == "none":
        return None
    # the OTLP exporters log every retry; `SpanShipper` says what failed, once per outage
    logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)
    if kind == "console":
        return ConsoleSpanExporter(
            out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    url = otlp_url(kind, endpoint, environ=os.environ)
    if kind == "otlp-grpc":
        return OtlpGrpcExporter(url)
    return OtlpHttpExporter(url)


class _WatchedExporter(SpanExporter):
    """One of the SDK's OTLP exporters, keeping why its last export failed."""

    url: str
    failure: str
    _sdk: Any

    def _forget(self) -> None:
        """Forgets the last failure, before an export."""

    def _said(self) -> str:
        """Why the last export failed, as far as the SDK let it be known."""
        return ""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._forget()
        result: SpanExportResult = self._sdk.export(spans)
        ok = result is SpanExportResult.SUCCESS
        self.failure = "" if ok else self._said() or "the exporter refused the batch"
        return result

    def shutdown(self) -> None:
        self._sdk.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class OtlpHttpExporter(_WatchedExporter):
    """The SDK's OTLP/HTTP exporter (its retries, and the OTEL_EXPORTER_OTLP_* headers,
    certificates and compression) that keeps why its last export failed: the SDK only
    logs that, in words that change between its versions."""

    def __init__(self, url: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        self.url = url
        self.failure = ""
        self._session = _WatchedSession()
        self._sdk = HttpExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S, session=self._session)

    def _forget(self) -> None:
        self._session.failure = ""

    def _said(self) -> str:
        return self._session.failure


class _WatchedSession(requests.Session):
    """Remembers the answer to its last request: an HTTP status, or the connection error."""

    def __init__(self) -> None:
        super().__init__()
        self.failure = ""

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.Timeout:
            self.failure = f"no answer within {EXPORT_TIMEOUT_S:g} s"
            raise
        except requests.ConnectionError as exc:
            self.failure = f"cannot connect ({_root_cause(exc)})"
            raise
        except requests.RequestException as exc:
            self.failure = f"the request failed ({_root_cause(exc)})"
            raise
        ok = 200 <= response.status_code < 300
        self.failure = "" if ok else _bounded(f"HTTP {response.status_code} {response.reason}")
        return response


class OtlpGrpcExporter(_WatchedExporter):
    """The SDK's OTLP/gRPC exporter that keeps why its last export failed (the status code
    and details the SDK logs)."""

    def __init__(self, url: str) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        self.url = url
        self.failure = ""
        _GrpcFailures.install()
        self._sdk = GrpcExporter(
            endpoint=url, insecure=url.startswith("http://"), timeout=EXPORT_TIMEOUT_S
        )

    def _forget(self) -> None:
        _GrpcFailures.said.last = ""

    def _said(self) -> str:
        last: str = _GrpcFailures.said.last
        return last


class _GrpcFailures(logging.Handler):
    """Catches the SDK gRPC exporter's final error, per exporting thread."""

    said = threading.local()
    _LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"

    @classmethod
    def install(cls) -> None:
        logger = logging.getLogger(cls._LOGGER)
        if not any(isinstance(h, cls) for h in logger.handlers):
            logger.addHandler(cls())
        logger.setLevel(logging.ERROR)  # its retries are warnings: not wanted
        logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        # ("traces", endpoint, code, details) in the SDK's "Failed to export" error
        args = record.args if isinstance(record.args, tuple) else ()
        code = getattr(args[2], "name", None) if len(args) == 4 else None
        why = f"gRPC {code} ({args[3]})" if code else record.getMessage()
        type(self).said.last = _bounded(why)


def _root_cause(error: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error ("Connection refused"), not a
    paragraph about connection pools."""
    seen: set[int] = set()
    current: BaseException | None = error
    found = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = current
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        reason = getattr(current, "reason", None)
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        if isinstance(reason, BaseException):
            current = reason
        else:
            current = nested or current.__cause__ or current.__context__
    return _bounded(str(found) or type(found).__name__)


def _bounded(text: str) -> str:
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + "…"


def sampled(span: Span, ratio: float) -> bool:
    """Trace-id ratio sampling, as the SDK's `TraceIdRatioBased`: the same decision for
    every span of a trace, on every node and in every export; a caller's unsampled
    `traceparent` is respected."""
    return span.sampled and keep_trace(span.trace_id, "01", ratio)


def keep_trace(trace_id: str, flags: str, ratio: float) -> bool:
    """Whether a trace is exported: sampled by its caller (the W3C flag) and by its id."""
    if ratio <= 0 or not int(flags, 16) & 1:
        return False
    return ratio >= 1 or int(trace_id[16:], 16) < round(ratio * (1 << 64))


def readable(span: Span, resource: Resource) -> ReadableSpan:
    """The SDK's form of a span, for its exporters."""
    parent = (
        SpanContext(int(span.trace_id, 16), int(span.parent_span_id, 16), False, _SAMPLED)
        if span.parent_span_id
        else None
    )
    status = (
        Status(StatusCode.ERROR, span.status_message)
        if span.status == "error"
        else _STATUS[span.status]
    )
    return ReadableSpan(
        name=span.name,
        context=SpanContext(int(span.trace_id, 16), int(span.span_id, 16), False, _SAMPLED),
        parent=parent,
        resource=resource,
        attributes=dict(span.attributes),
        events=[SdkEvent(e.name, dict(e.attributes), e.time_ns) for e in span.events]
        if span.events
        else (),
        kind=_KINDS[span.kind],
        status=status,
        start_time=span.start_ns,
        end_time=span.end_ns,
        instrumentation_scope=_SCOPE,
    )


class SpanShipper:
    """Builds the sampled spans of committed events, in log order, and exports them in
    batches. A batch the exporter refuses is dropped and counted; an outage is logged
    when it starts, when its reason changes (not too often) and when it ends."""

    def __init__(self, exporter: SpanExporter, *, sampling: float = 1.0, node: str = "") -> None:
        self.exporter = exporter
        self.sampling = sampling
        self.exported = 0
        self.dropped = 0
        keep = None if sampling >= 1 else lambda trace, flags: keep_trace(trace, flags, sampling)
        self._builder = SpanBuilder(keep=keep)
        attributes = {"service.name": "caxton", "service.version": __version__}
        if node:
            attributes["service.instance.id"] = node
        self._node = node
        self._resource = Resource.create(attributes)
        self._failing = False
        self._failure = ""
        self._said_at = 0.0
        self._unbuildable = False

    def build(self, events: Iterable[Recorded]) -> list[ReadableSpan]:
        """The sampled spans of `events` (the next ones of the log), in the SDK's form.
        In a cluster's log, only those that an event this node committed completes: the
        builder sees every event (a span may start on one node and end on another), and
        each span is exported once, by one node."""
        found: list[ReadableSpan] = []
        for recorded in events:
            try:
                spans = self._builder.spans(recorded)
                if recorded.node and recorded.node != self._node:
                    continue
            except Exception:  # one event the builder cannot read must not stop the others
                self.dropped += 1
                if not self._unbuildable:
                    logger.exception("no span built from the event at %d", recorded.position)
                self._unbuildable = True
                continue
            found.extend(readable(s, self._resource) for s in spans if sampled(s, self.sampling))
        return found

    def export(self, spans: Sequence[ReadableSpan]) -> None:
        """Exports `spans` in batches of at most BATCH (blocking: up to EXPORT_TIMEOUT_S a
        batch when the collector does not answer)."""
        for start in range(0, len(spans), BATCH):
            self._export(spans[start : start + BATCH])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        try:
            result = self.exporter.export(batch)
            failure = self.exporter.failure if isinstance(self.exporter, Explained) else ""
        except Exception as exc:
            result, failure = SpanExportResult.FAILURE, _bounded(f"{type(exc).__name__}: {exc}")
        if result is SpanExportResult.SUCCESS:
            self.exported += len(batch)
            if self._failing:
                logger.info("%s works again", self._export_to)
            self._failing = False
        else:
            self.dropped += len(batch)
            self._failed(failure or "the exporter refused the batch")

    def _failed(self, failure: str) -> None:
        """Says so when exports start failing, and when the reason changes (not too often)."""
        now = time.monotonic()
        if self._failing and (failure == self._failure or now - self._said_at < _SAY_AGAIN_S):
            return
        logger.warning("%s failed: %s; dropping spans until it works", self._export_to, failure)
        self._failing, self._failure, self._said_at = True, failure, now

    @property
    def _export_to(self) -> str:
        url = self.exporter.url if isinstance(self.exporter, Explained) else ""
        return f"span export to {url}" if url else "span export"
