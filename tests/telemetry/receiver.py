"""A minimal OTLP/HTTP receiver on loopback, for the span exporters' tests."""

from __future__ import annotations

import asyncio

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from tests.support import free_port


class OtlpReceiver:
    """A minimal OTLP/HTTP receiver on loopback: decodes each protobuf body POSTed to
    /v1/traces and answers `status`; any other path gets 404, as from a real collector."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self.answering = asyncio.Event()
        """Cleared, requests are taken but not answered: the exporter waits for its answer."""
        self.answering.set()

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
                    async with self._arrived:
                        self.received.append(request)
                        self._arrived.notify_all()
                await self.answering.wait()
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

    @property
    def spans(self) -> list[OtlpSpan]:
        return [
            span
            for request in self.received
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    async def until(self, spans: int) -> None:
        """Waits until at least `spans` spans have arrived."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.spans) >= spans)
