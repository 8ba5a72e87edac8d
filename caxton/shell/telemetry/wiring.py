"""One server's observability: metrics, health, live figures, the span exporter, logs."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from grpclib.const import Status
from grpclib.events import RecvRequest, SendTrailingMetadata, listen
from grpclib.server import Server
from grpclib.server import Stream as ServerStream

from caxton.shell.config import OFF, ServerConfig
from caxton.shell.runtime.errors import LogFailed, LogUnreachable
from caxton.shell.runtime.node import Node
from caxton.shell.store import EventLog
from caxton.shell.telemetry.exporter import TraceExport, otlp_url
from caxton.shell.telemetry.http import HttpEndpoints, Response
from caxton.shell.telemetry.live import ConversationGauges, LiveStats
from caxton.shell.telemetry.logs import AgentLogFilter, AgentLogLimiter
from caxton.shell.telemetry.metrics import CONTENT_TYPE, Metrics
from caxton.shell.telemetry.span_follower import SpanSettings
from caxton.shell.telemetry.span_process import SpanProcess, committed_position
from caxton.shell.tls import HTTP1, server_context

_JSON = "application/json"


@dataclass(slots=True)
class _Request:
    """The gRPC request the current task serves, and whether it is counted yet."""

    method: str
    counted: bool = False


_REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "caxton_grpc_request", default=None
)


class Observability:
    """Binds its ports first (a port in use fails the start at once), then watches the node."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.stats = LiveStats()
        self.checks = {"log": False, "integrity": False, "api": False}
        self._metrics_http = HttpEndpoints("metrics", "--metrics", {"/metrics": self._metrics_page})
        self._health_http = HttpEndpoints(
            "health", "--health", {"/health": self._health, "/ready": self._ready}
        )
        self._spans: SpanProcess | None = None
        self._spans_log: EventLog | None = None
        self._traces_to = ""
        self._watched: tuple[Node, EventLog] | None = None
        self._log_filter = AgentLogFilter(AgentLogLimiter(on_drop=self._log_dropped))

    def _log_dropped(self, agent: str) -> None:
        self.metrics.agent_logs_dropped.labels(agent).inc()

    @property
    def addresses(self) -> dict[str, str]:
        """What is served where, for the start-up announcement."""
        found = {}
        scheme = "https" if self.config.tls_cert else "http"
        if self._metrics_http.address:
            found["metrics"] = f"{scheme}://{self._metrics_http.address}/metrics"
        if self._health_http.address:
            found["health"] = f"{scheme}://{self._health_http.address}/health"
        if self._traces_to:
            found["traces"] = f"{self._traces_to} ({self.config.traces})"
        return found

    async def bind(self) -> None:
        """Starts `/metrics` and `/health` + `/ready`, over TLS when the server has a
        certificate; raises `EndpointUnavailable` (or `TlsUnusable`)."""
        tls = server_context(self.config, alpn=HTTP1, verify_clients=False)
        if self.config.metrics != OFF:
            await self._metrics_http.start(self.config.metrics, tls=tls)
        if self.config.health != OFF:
            try:
                await self._health_http.start(self.config.health, tls=tls)
            except BaseException:
                await self._metrics_http.close()
                raise
        logging.getLogger("caxton.agent").addFilter(self._log_filter)

    def attach(self, node: Node, log: EventLog) -> None:
        """Counts every committed event of `node` from now on (call before `node.start`)."""
        self.checks["log"] = True
        self._watched = (node, log)
        self.metrics.attach(node)
        self.metrics.registry.register(ConversationGauges(node, self.stats))
        node.observers.append(self.metrics.observe)
        node.observers.append(self.stats.observe)
        # a cluster's counters are summed over its nodes: each counts what it committed
        node.followers.append(self.metrics.learn)
        node.followers.append(self.stats.observe)

    def start_traces(self, log: EventLog, node: Node) -> None:
        """Exports spans of what the node commits from now on (call before `node.start`),
        from a process of their own that follows the log (`span_process`)."""
        kind: TraceExport = self.config.traces  # type: ignore[assignment]
        if kind == "none":
            return
        if kind != "console":
            self._traces_to = otlp_url(kind, self.config.otlp_endpoint, environ=os.environ)
        # the SQLite file as the log opened it; a PostgreSQL URL's password is hidden there
        store = self.config.store_url if log.where.startswith("postgres") else log.where
        settings = SpanSettings(
            store=store,
            from_position=committed_position(store) + 1,
            traces=kind,
            endpoint=self.config.otlp_endpoint,
            sampling=float(self.config.trace_sampling),
            node=node.node_id,
        )
        self._spans = SpanProcess(
            settings,
            on_exported=self.metrics.spans_exported.inc,
            on_dropped=self.metrics.spans_dropped.inc,
        )
        self._spans.start()
        self._spans_log = log

    def count_requests(self, server: Server) -> None:
        """Counts each request once by its status; one the client cancelled (a reset stream,
        a closed connection) as CANCELLED, which grpclib would report as UNKNOWN or not at all."""

        async def received(event: RecvRequest) -> None:
            request = _Request(event.method_name.rsplit("/", 1)[-1])
            _REQUEST.set(request)
            handle, deadline = event.method_func, event.deadline

            async def watched(stream: ServerStream[Any, Any]) -> None:
                try:
                    await handle(stream)
                except asyncio.CancelledError:
                    # counted here: after a reset grpclib's trailers say UNKNOWN, after a
                    # closed connection it sends none
                    passed = deadline is not None and deadline.time_remaining() <= 0
                    status = Status.DEADLINE_EXCEEDED if passed else Status.CANCELLED
                    request.counted = True
                    self.metrics.request(request.method, status.name)
                    raise

            event.method_func = watched

        async def answered(event: SendTrailingMetadata) -> None:
            request = _REQUEST.get()
            if request is None:
                self.metrics.request("unknown", event.status.name)
            elif not request.counted:
                request.counted = True
                self.metrics.request(request.method, event.status.name)

        listen(server, RecvRequest, received)
        listen(server, SendTrailingMetadata, answered)

    async def close(self) -> None:
        logging.getLogger("caxton.agent").removeFilter(self._log_filter)
        await self.stop_traces()
        await self._metrics_http.close()
        await self._health_http.close()

    async def stop_traces(self) -> None:
        """The span process ships what the log holds now (the node has stopped) and ends;
        once."""
        if self._spans is None or self._spans_log is None:
            return
        spans, self._spans = self._spans, None
        position = None
        with contextlib.suppress(Exception):  # a failed log: the process reads to its end
            position = await self._spans_log.last_position()
        await spans.close(position)

    # --- the HTTP pages -----------------------------------------------------

    def _metrics_page(self) -> Response:
        return 200, CONTENT_TYPE, self.metrics.exposition()

    def _health(self) -> Response:
        return 200, _JSON, b'{"status": "live"}\n'

    def _ready(self) -> Response:
        refusal = self.log_refusal()
        checks = {**self.checks, "log": self.checks["log"] and not refusal}
        ready = all(checks.values())
        answer: dict[str, object] = {"ready": ready, **checks}
        if refusal:
            answer["reason"] = refusal
        body = json.dumps(answer) + "\n"
        return (200 if ready else 503), _JSON, body.encode()

    def log_refusal(self) -> str:
        """Why appends fail (the last one did), or why the node refuses work since one
        failed (it must be restarted); "" while the log takes appends."""
        if self._watched is None:
            return ""
        node, log = self._watched
        if node.log_failure is not None:
            return str(LogFailed(node.log_failure, rejoins=node.ownership is not None))
        if node.unreachable:
            return str(LogUnreachable(node.node_id, node.unreachable))
        return "" if log.fault is None else f"the event log refuses appends ({log.fault})"
