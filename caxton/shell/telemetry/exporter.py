"""The live trace exporter: spans built from committed events, shipped off the hot path.

A background task follows the log, turns events into spans with the same builder as
`caxton events export --format otlp-json` (`caxton.replay.spans`), converts the
sampled ones to the SDK's `ReadableSpan` and hands batches to an exporter (OTLP gRPC or
HTTP, console) on a worker thread. The queue is bounded: when the collector is slow or
absent, spans are dropped and counted, and message handling never waits.

Where spans go follows OpenTelemetry's exporter conventions (`otlp_url`). A failing export
is logged when it starts failing (naming the URL and the HTTP status or connection error),
again if the reason changes (at most once a minute), and once when it works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
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
from caxton.shell.store import EventLog

logger = logging.getLogger("caxton.telemetry")

TraceExport = Literal["none", "console", "otlp-grpc", "otlp-http"]
TRACE_EXPORTS: tuple[TraceExport, ...] = ("none", "console", "otlp-grpc", "otlp-http")
DEFAULT_ENDPOINTS = {"otlp-grpc": "http://127.0.0.1:4317", "otlp-http": "http://127.0.0.1:4318"}
TRACES_PATH = "/v1/traces"
"""What OTLP/HTTP puts under a base URL for traces."""
ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
MAX_QUEUE = 20_000
_CHUNK = 64
_WAKE_AT = 512
_TICK_S = 0.05
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
    # the OTLP exporters log every retry; `LiveExporter` says what failed, once per outage
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


class LiveExporter:
    """Exports the sampled spans of committed events: those the node hands to `feed` (a
    node observer: appending to a bounded deque is all it costs the commit), or, given a
    position, those it reads by following the log from there."""

    def __init__(
        self,
        log: EventLog,
        exporter: SpanExporter,
        *,
        sampling: float = 1.0,
        node: str = "",
        max_queue: int = MAX_QUEUE,
        on_exported: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.log = log
        self.exporter = exporter
        self.sampling = sampling
        self.max_queue = max_queue
        self.exported = 0
        self.dropped = 0
        self._keep = (
            None if sampling >= 1 else lambda trace, flags: keep_trace(trace, flags, sampling)
        )
        self._on_exported = on_exported
        self._on_dropped = on_dropped
        attributes = {"service.name": "caxton", "service.version": __version__}
        if node:
            attributes["service.instance.id"] = node
        self._resource = Resource.create(attributes)
        self._queue: deque[ReadableSpan] = deque()
        self._events: deque[Recorded] = deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False
        self._failure = ""
        self._said_at = 0.0
        self._in_flight = 0
        self._progress = asyncio.Condition()
        self._flushes = 0  # someone waits in `flush`: tell them of progress
        self.position = 0
        """The last log position turned into spans."""

    async def flush(self, position: int) -> None:
        """Waits until the events up to `position` are built into spans and shipped."""
        self._flushes += 1
        try:
            async with self._progress:
                await self._progress.wait_for(
                    lambda: self.position >= position and not self._queue and not self._in_flight
                )
        finally:
            self._flushes -= 1

    def start(self, from_position: int | None = None) -> None:
        """Builds spans from what `feed` gets, or from the log from `from_position`."""
        loop = asyncio.get_running_loop()
        source = self._follow(from_position) if from_position is not None else self._drain()
        self._tasks = [
            loop.create_task(source, name="caxton-span-builder"),
            loop.create_task(self._ship(), name="caxton-span-exporter"),
        ]

    def feed(self, recorded: Recorded) -> None:
        """A committed event (a node observer); dropped, and counted, past `max_queue`."""
        if len(self._events) >= self.max_queue:  # its spans will never be: count it as one
            self.dropped += 1
            if self._on_dropped is not None:
                self._on_dropped(1)
            return
        self._events.append(recorded)  # the builder looks every _TICK_S: waking it after
        # every commit would cost more than building the spans

    async def close(self, timeout: float = EXPORT_TIMEOUT_S) -> None:
        """Stops following, ships what is queued (within `timeout`), shuts the exporter."""
        follow, ship = self._tasks or (None, None)
        if follow is not None:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
        if ship is not None:
            self._queue.append(_END)
            self._ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ship, timeout)
        await asyncio.to_thread(self.exporter.shutdown)

    async def _follow(self, from_position: int) -> None:
        builder = SpanBuilder(keep=self._keep)
        try:
            async for recorded in self.log.follow(from_position=from_position):
                self._build(builder, recorded)
                if self._flushes and not self._queue:
                    await self._notify()
        except Exception:  # telemetry must never take the server down
            logger.exception("the span exporter stopped following the log")

    async def _drain(self) -> None:
        builder = SpanBuilder(keep=self._keep)
        events = self._events
        try:
            while True:
                if len(events) < _WAKE_AT:
                    await asyncio.sleep(_TICK_S)
                while events:
                    for _ in range(min(len(events), _CHUNK)):
                        self._build(builder, events.popleft())
                    await asyncio.sleep(0)  # let handling go first between chunks
                if self._flushes:
                    await self._notify()
        except Exception:  # telemetry must never take the server down
            logger.exception("the span exporter stopped building spans")

    def _build(self, builder: SpanBuilder, recorded: Recorded) -> None:
        for span in builder.spans(recorded):
            if sampled(span, self.sampling):
                self._enqueue(readable(span, self._resource))
        self.position = recorded.position

    def _enqueue(self, span: ReadableSpan) -> None:
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            if self._on_dropped is not None:
                self._on_dropped(1)
            return
        self._queue.append(span)
        self._ready.set()

    async def _ship(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                batch: list[ReadableSpan] = []
                while self._queue and len(batch) < BATCH:
                    span = self._queue.popleft()
                    if span is _END:
                        await self._export(batch)
                        return
                    batch.append(span)
                await self._export(batch)

    async def _export(self, batch: Sequence[ReadableSpan]) -> None:
        if not batch:
            return
        self._in_flight += 1
        try:
            result = await asyncio.to_thread(self.exporter.export, batch)
            failure = self.exporter.failure if isinstance(self.exporter, Explained) else ""
        except Exception as exc:
            result, failure = SpanExportResult.FAILURE, _bounded(f"{type(exc).__name__}: {exc}")
        finally:
            self._in_flight -= 1
        if self._flushes:
            await self._notify()
        if result is SpanExportResult.SUCCESS:
            self.exported += len(batch)
            if self._on_exported is not None:
                self._on_exported(len(batch))
            if self._failing:
                logger.info("%s works again", self._export_to)
            self._failing = False
        else:
            self.dropped += len(batch)
            if self._on_dropped is not None:
                self._on_dropped(len(batch))
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

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()


_END = ReadableSpan(name="end of export")
