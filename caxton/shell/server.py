"""`caxton server start`: lock the data directory, open the log, fold it, serve the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from grpclib.health.check import CheckBase, ServiceStatus
from grpclib.health.service import Health
from grpclib.server import Server

from caxton.domain.acl import DEFAULT_MAX_CONTENT_BYTES
from caxton.domain.addresses import is_loopback
from caxton.domain.events import MemberChanged, Recorded
from caxton.shell.api.auth import install_token_check
from caxton.shell.api.cluster import ClusterService
from caxton.shell.api.codec import RequestCodec
from caxton.shell.api.errors import install_bounded_errors
from caxton.shell.api.limits import RequestLimits, install_request_limits
from caxton.shell.api.ops import OpsService
from caxton.shell.api.reflection import with_reflection
from caxton.shell.api.service import (
    AgentService,
    ConversationService,
    EventService,
    MessageService,
    services_for,
)
from caxton.shell.api.tools import ToolService
from caxton.shell.cluster import Gossip, GossipConfig, GossipError, Peer
from caxton.shell.cluster.leases import LeaseKeeper
from caxton.shell.config import OFF, ServerConfig
from caxton.shell.datadir import DataDir, DataDirUnusable
from caxton.shell.runtime.clock import SystemClock
from caxton.shell.runtime.collector import tune_collector
from caxton.shell.runtime.node import Node
from caxton.shell.store import EventLog, StoreError, answering
from caxton.shell.telemetry.wiring import Observability
from caxton.shell.tls import HTTP1, HTTP2, exposure_warning, server_context
from caxton.shell.wasm import WasmHost

if TYPE_CHECKING:
    from grpclib._typing import IServable

    from caxton.shell.rest import RestGateway
    from caxton.shell.tools.bridge import ToolBridge

T = TypeVar("T")

logger = logging.getLogger("caxton.server")
LOG_CHECK_INTERVAL_S = 0.5
NOT_SERVING_GRACE_S = 0.2  # from NOT_SERVING to the end of every call, at a stop
REJOIN_STOP_S = 5.0  # a deposed node's agents stop within this, or are left to the restart
REJOIN_PROBE_S = 3.0  # each question to the shared log, while a deposed node waits for it


class ListenFailed(Exception):
    """The API address cannot be bound."""


class NodeDeposed(Exception):
    """A node of a cluster lost its shards and was stopped (SIGTERM, SIGINT) before it
    could rejoin (ADR 0018)."""


class _Membership:
    """The gossip's view, for the lease keeper's count of live nodes, and its verdicts
    recorded in the log as this node saw them (hints: they move no shard)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.gossip: Gossip | None = None

    def live(self) -> int:
        if self.gossip is None:
            return 1
        return sum(1 for peer in self.gossip.peers() if peer.state in ("alive", "suspect"))

    def saw(self, peer: Peer, node: Node, keeper: LeaseKeeper) -> None:
        if peer.node == self.node_id:
            return
        if peer.state == "dead":
            keeper.poke()  # its leases may be free soon: look at expiry, not a tick later
        change = MemberChanged(
            node=peer.node,
            state=peer.state,
            by=self.node_id,
            incarnation=peer.incarnation,
            address=peer.address,
        )
        recorded = node.commit([change])
        recorded.add_done_callback(_quietly)


def _quietly(done: asyncio.Future[list[Recorded]]) -> None:
    """A verdict the log refused (the node is stopping, say) is only a lost hint."""
    if not done.cancelled() and done.exception() is not None:
        logger.debug("a membership change was not recorded: %s", done.exception())


def _refuse_imported(config: ServerConfig) -> None:
    """A log imported from a bundle is an excerpt of another log (positions with gaps,
    agents without their history): it is for reading, not for running."""
    from caxton.shell.archive.bundle import imported_from

    if config.store:
        return
    conversation = imported_from(Path(config.store_url))
    if conversation:
        raise DataDirUnusable(
            f"{config.data_dir} holds conversation {conversation} imported from a bundle: "
            f"browse it with 'caxton replay --log {config.data_dir} --conversation "
            f"{conversation}'; a server cannot run on it"
        )


async def serve(
    config: ServerConfig,
    *,
    announce: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> None:
    """Runs a server until SIGINT or SIGTERM, then stops cleanly. Raises TlsUnusable for a
    certificate or key it cannot use, before it touches the data directory."""
    tune_collector()
    api_tls = server_context(config, alpn=HTTP2)
    rest_tls = server_context(config, alpn=HTTP1)  # the REST gateway speaks HTTP/1.1
    warning = exposure_warning(
        {"gRPC API": config.listen, "REST gateway": config.rest},
        tls=api_tls is not None,
        token=bool(config.token),
        client_certificates=bool(config.tls_client_ca),
    )
    if warning:
        warn(warning)
    with DataDir(config.data_dir) as data_dir:
        _refuse_imported(config)
        # every step of the stop runs, in reverse, even when an earlier one fails (a node
        # whose last append failed once left the log and its threads open, and hung)
        async with contextlib.AsyncExitStack() as stopping:
            clustered = bool(config.cluster)
            node_id = config.node_id or data_dir.node_id()
            log = await EventLog.open(
                config.store_url,
                synchronous=config.synchronous.upper(),
                exclusive=not clustered,
                shared=clustered,
                origin=node_id if clustered else "",
            )
            stopping.push_async_callback(log.close)
            host = WasmHost(data_dir.components)
            stopping.callback(host.close)
            bind_host, port = config.host_port
            observability = Observability(config)
            stopping.push_async_callback(observability.close)
            bridge = _tool_bridge(config)
            if bridge is not None:
                stopping.push_async_callback(bridge.close)  # stops the tool server processes
            membership = _Membership(node_id)
            keeper: LeaseKeeper | None = None
            if clustered:
                keeper = LeaseKeeper(
                    log, node_id, SystemClock(), live=membership.live, lease_s=float(config.lease_s)
                )
                # the node hands its shards over as it stops; whatever it could not
                stopping.push_async_callback(keeper.release_held)
            node = Node(
                log=log,
                host=host,
                clock=SystemClock(),
                node_id=node_id,
                address=f"{bind_host}:{port}",
                tools=bridge,
                ownership=keeper,
            )
            stopping.push_async_callback(node.shutdown)
            if keeper is not None:
                stopping.push_async_callback(keeper.halt)  # no claim while the node stops
                node.followers.append(keeper.follow)  # another node's release: claim now
            await observability.bind()
            gateway = _rest_gateway(config)
            if gateway is not None:
                stopping.push_async_callback(gateway.close)  # a failed start frees its port
            observability.attach(node, log)
            observability.start_traces(log, node)
            await node.start()
            if keeper is not None:
                try:
                    gossiping = GossipConfig(
                        node=node_id,
                        cluster=config.cluster,
                        bind=config.gossip,
                        seeds=tuple(filter(None, (x.strip() for x in config.seeds.split(",")))),
                        api=f"{bind_host}:{port}",
                        key=config.cluster_key,
                    )
                except ValueError as exc:
                    raise GossipError(str(exc)) from None
                gossip = await Gossip.start(
                    gossiping, on_change=lambda peer: membership.saw(peer, node, keeper)
                )
                membership.gossip = gossip
                for peer in gossip.peers():  # those it met while joining: no change announced
                    membership.saw(peer, node, keeper)
                stopping.push_async_callback(gossip.close)  # leaves before the node stops
                keeper.start(node)
            observability.checks["integrity"] = True
            handlers = [
                *services_for(node, log),
                OpsService(node, observability.stats),
                ToolService(node, bridge),
            ]
            serving = ServiceStatus()
            server = api_server(
                handlers,
                serving,
                token=config.token,
                log_refusal=observability.log_refusal,
                max_content_bytes=node.max_content_bytes,
            )
            observability.count_requests(server)
            try:
                await server.start(bind_host, port, ssl=api_tls)
            except OSError as exc:
                raise ListenFailed(
                    f"cannot listen on {bind_host}:{port} ({exc.strerror}); "
                    "is another server running? choose another address with --listen"
                ) from None
            stopping.push_async_callback(stop_serving, server, serving)
            if gateway is not None:
                # the same service objects: REST is an adapter of them, as gRPC is
                _serve_rest(gateway, handlers, serving, observability, config, node, rest_tls)
                stopping.push_async_callback(gateway.close)  # stops before gRPC does
            # before the announcement: a SIGINT sent as soon as it is read must stop the
            # server as any other (asyncio.run's own handler would end it as "aborted")
            signalled = stopping.enter_context(_signals())
            observability.checks["api"] = True
            for what, where in observability.addresses.items():
                announce(f"  {what}: {where}")
            if gateway is not None:
                scheme = "https" if rest_tls is not None else "http"
                announce(
                    f"  rest: {scheme}://{gateway.address}/api/v1 (described at /openapi.json)"
                )
            announce(
                f"✓ Caxton {node.node_id} listening on {_scheme(config)}{bind_host}:{port} "
                f"({_security(config)}log: {log.where}, position {node.world.position})"
            )
            serving.set(True)
            deposed = asyncio.ensure_future(node.deposed.wait())
            stop = asyncio.ensure_future(signalled.wait())
            await asyncio.wait([stop, deposed], return_when=asyncio.FIRST_COMPLETED)
            for waiting in (stop, deposed):
                waiting.cancel()
            if node.deposed.is_set():
                announce(
                    f"✗ node {node_id} stopped working: {node.log_failure}. It stopped its "
                    "agents rather than act on a world it can no longer write to; other "
                    "nodes take its shards over"
                )
                await stop_serving(server, serving)
                if keeper is not None:
                    await keeper.halt()  # it claims nothing more: the restarted node will
                if membership.gossip is not None:
                    await membership.gossip.close()  # peers see it leave, not a live node
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REJOIN_STOP_S):  # its appends may hang on a cut
                        await node.shutdown()
                        if keeper is not None:  # what it still holds: others need not wait
                            await keeper.release_held()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REJOIN_STOP_S):  # its child processes end
                        await observability.stop_traces()  # /ready still says why
                        if bridge is not None:
                            await bridge.close()  # the MCP tool servers
                await _rejoin(config.store_url, signalled, announce)
                raise NodeDeposed(
                    f"node {node_id} stopped working ({node.log_failure}) and was stopped "
                    "before it could rejoin its cluster"
                )
            announce("stopping…")
        announce("✓ stopped cleanly")


def _scheme(config: ServerConfig) -> str:
    return "https://" if config.tls_cert else ""


def _security(config: ServerConfig) -> str:
    """What guards the API, as the announcement says it."""
    guards = []
    if config.tls_cert:
        guards.append("TLS with client certificates" if config.tls_client_ca else "TLS")
    if config.token:
        guards.append("token")
    return f"{', '.join(guards)}; " if guards else ""


async def _rejoin(store_url: str, stopping: asyncio.Event, announce: Callable[[str], None]) -> None:
    """Waits until the shared log answers, then restarts this process in place (same
    pid, same arguments): a fresh node folds the log, joins the cluster and claims its
    share of shards, with no step by hand when a partition heals. Returns only if a
    signal stops the wait."""
    announce("  rejoining the cluster as soon as the shared log answers…")
    while not stopping.is_set():
        try:
            await answering(store_url, within_s=REJOIN_PROBE_S)
        except StoreError as e:
            logger.info("the shared log does not answer yet: %s", e)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stopping.wait()
            continue
        announce("  the shared log answers: restarting to rejoin")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)


def api_server(
    handlers: Sequence[IServable],
    serving: ServiceStatus,
    *,
    token: str,
    log_refusal: Callable[[], str] = lambda: "",
    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES,
) -> Server:
    """The gRPC server: Caxton's services, the standard health service (each service and
    the overall "" SERVING while `serving` is set and `log_refusal` says nothing, as
    `/ready`) and server reflection over them all; every call but a health check needs the
    token, if there is one."""

    log = LogCheck(log_refusal)
    health = Health({handler: [serving, log] for handler in handlers})
    limits = RequestLimits(max_content_bytes)
    server = Server(with_reflection([*handlers, health]), codec=RequestCodec(limits))
    install_request_limits(server, limits)
    install_bounded_errors(server)
    if token:
        install_token_check(server, token)
    return server


class LogCheck(CheckBase):
    """SERVING while the log takes appends: answered fresh to Check, and looked at every
    LOG_CHECK_INTERVAL_S while a Watch stream waits for a change (nothing says when)."""

    def __init__(self, refusal: Callable[[], str]) -> None:
        self._refusal = refusal
        self._events: set[asyncio.Event] = set()
        self._polling: asyncio.Task[None] | None = None

    def __status__(self) -> bool:
        return not self._refusal()

    async def __check__(self) -> bool:
        return self.__status__()

    async def __subscribe__(self) -> asyncio.Event:
        if self._polling is None:
            self._polling = asyncio.create_task(self._poll())
        event = asyncio.Event()
        self._events.add(event)
        return event

    async def __unsubscribe__(self, event: asyncio.Event) -> None:
        self._events.discard(event)
        if not self._events and self._polling is not None:
            self._polling.cancel()
            self._polling = None

    async def _poll(self) -> None:
        last = self.__status__()
        while True:
            await asyncio.sleep(LOG_CHECK_INTERVAL_S)
            if self.__status__() != last:
                last = not last
                for event in self._events:
                    event.set()


async def stop_serving(server: Server, serving: ServiceStatus) -> None:
    """Health watchers are told NOT_SERVING, then every call is cancelled."""
    serving.set(False)
    # A Watch stream sends its answer a few loop turns after the change; closing the
    # server would cancel it first. How many watchers are still to be told is not known.
    await asyncio.sleep(NOT_SERVING_GRACE_S)
    server.close()
    with contextlib.suppress(Exception):
        await server.wait_closed()


def _rest_gateway(config: ServerConfig) -> RestGateway | None:
    """The REST gateway with its address bound, unless `--rest off`; Starlette and uvicorn
    are imported only then."""
    if config.rest == OFF:
        return None
    from caxton.shell.rest import RestGateway

    gateway = RestGateway()
    gateway.bind(config.rest)
    return gateway


def _serve_rest(
    gateway: RestGateway,
    handlers: Sequence[object],
    serving: ServiceStatus,
    observability: Observability,
    config: ServerConfig,
    node: Node,
    tls: ssl.SSLContext | None,
) -> None:
    """Serves the REST gateway over the gRPC server's own service objects, with the same
    token and TLS (client certificates included) as the gRPC API."""
    from caxton.shell.rest import Services, rest_app

    def of(kind: type[T]) -> T:
        (found,) = (h for h in handlers if isinstance(h, kind))
        return found

    def refusal() -> str:
        if not serving.__status__():
            return "the server is starting or stopping"
        return observability.log_refusal()

    services = Services(
        agents=of(AgentService),
        messages=of(MessageService),
        conversations=of(ConversationService),
        events=of(EventService),
        ops=of(OpsService),
        tools=of(ToolService),
        cluster=of(ClusterService),
        refusal=refusal,
        stopping=gateway.stopping,
    )
    limits = RequestLimits(node.max_content_bytes)
    host = config.rest.rpartition(":")[0].strip("[]")
    app = rest_app(services, token=config.token, limits=limits, loopback=is_loopback(host))
    gateway.start(app, tls=tls)


def _tool_bridge(config: ServerConfig) -> ToolBridge | None:
    """The MCP tool bridge when caxton.toml declares [tools.NAME] servers (they start on
    first use); the SDK is imported only then."""
    if not config.tools:
        return None
    from caxton.shell.tools.bridge import ToolBridge

    bridge = ToolBridge(config.tools)
    bridge.bind()
    return bridge


@contextlib.contextmanager
def _signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM, while in the block."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
