"""`CaxtonClient`: the Python client of a Caxton server, used by the CLI, the TUI and users.

CaxtonError
├── ServerUnavailable   nothing answers at the address, or the server is stopping
├── Unauthenticated     the server wants a (different) token
├── NotFound            no such agent or conversation
├── AlreadyExists       an agent of that name is deployed
├── InvalidArgument     the server refused the request; the message names the field
├── Busy                backpressure: a mailbox (or the server's disk) is full, retry later
├── DeadlineExceeded    no answer within the client's deadline; says which call was running
└── InvokeTimeout       no reply within the timeout
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import ProtocolError, StreamTerminatedError

from caxton.domain import digests, strict_json
from caxton.domain.acl import AclMessage
from caxton.domain.addresses import parse_server_address
from caxton.domain.events import Recorded
from caxton.domain.memory import Memory
from caxton.domain.schema import decode, message_from_stored
from caxton.shell.api.codec import FastCodec
from caxton.shell.api.convert import envelope_dict, envelope_of
from caxton.shell.api.generated.caxton import v1
from caxton.shell.operations import (
    AgentDebug,
    Setting,
    TopSnapshot,
    debug_of,
    settings_of,
    top_of,
)
from caxton.shell.tls import DROPPED_SILENTLY, TlsUnusable, client_context, why_dropped


class CaxtonError(Exception):
    """Base of the client's errors; the message is for people."""


class ServerUnavailable(CaxtonError):
    pass


class Unauthenticated(CaxtonError):
    pass


class NotFound(CaxtonError):
    pass


class FailedPrecondition(CaxtonError):
    """The request is valid but the state it needs is not there (an agent keeping no
    memory asked for its memory, say)."""


class AlreadyExists(CaxtonError):
    pass


class InvalidArgument(CaxtonError):
    pass


class Busy(CaxtonError):
    pass


class DeadlineExceeded(CaxtonError):
    pass


class InvokeTimeout(CaxtonError):
    pass


DEFAULT_ADDRESS = "127.0.0.1:50051"
SEND_STREAM = "/caxton.v1.MessageService/SendStream"
STREAM_BATCH = 256
STREAM_BATCH_BYTES = 128 << 10
"""Under any server's limit for one batch: its largest envelope and 64 KiB (ADR 0015)."""

_TRANSPORT_ERRORS = (GRPCError, OSError, StreamTerminatedError, ProtocolError)

_BY_STATUS: dict[Status, type[CaxtonError]] = {
    Status.UNAVAILABLE: ServerUnavailable,
    Status.UNAUTHENTICATED: Unauthenticated,
    Status.NOT_FOUND: NotFound,
    Status.ALREADY_EXISTS: AlreadyExists,
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.RESOURCE_EXHAUSTED: Busy,
    Status.FAILED_PRECONDITION: FailedPrecondition,
}


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    replica: int
    lifecycle: str
    incarnation: int
    restarts: int
    traps: int
    handled: int
    last_error: str
    node: str = ""
    """The node running it ("" while no node holds its agent's shard)."""
    memory: bool = False
    """Whether it keeps memory, rebuilt from the log at every restart."""
    memory_rebuilt: int = 0
    memory_restored: int = 0
    quarantined: int = 0
    memory_diverged: str = ""


@dataclass(frozen=True, slots=True)
class AgentInfo:
    name: str
    component_digest: str
    component_size: int
    capabilities: tuple[str, ...]
    replicas: int
    status: str
    status_line: str
    memory_bytes: int
    timeout_ms: int
    mailbox: int
    instances: tuple[InstanceInfo, ...] = field(default=())
    tools: tuple[str, ...] = ()

    @property
    def healthy(self) -> int:
        return sum(1 for i in self.instances if i.lifecycle == "running")


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: str
    protocol: str
    state: str
    participants: tuple[str, ...]
    message_count: int
    started_at_ms: int
    last_at_ms: int
    violations: tuple[str, ...]
    phase: str


class ConversationList(list[ConversationInfo]):
    """A listing; `truncated` when more conversations matched than were asked for."""

    def __init__(self, items: Iterable[ConversationInfo] = (), truncated: bool = False) -> None:
        super().__init__(items)
        self.truncated = truncated


@dataclass(frozen=True, slots=True)
class ToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BreakerInfo:
    agent: str
    state: str
    failures: int
    last_reason: str


@dataclass(frozen=True, slots=True)
class ToolServerInfo:
    name: str
    transport: str
    where: str
    state: str
    detail: str
    breakers: tuple[BreakerInfo, ...]
    tools: tuple[ToolInfo, ...]
    timeout_ms: int
    max_concurrency: int
    breaker_threshold: int
    breaker_reset_ms: int
    max_result_bytes: int


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    result_json: str
    error_kind: str
    error: str
    duration_us: int
    truncated: bool

    @property
    def ok(self) -> bool:
        return not self.error_kind


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """One node of a cluster, as the log last said of it."""

    node: str
    address: str
    state: str
    """alive, suspect, dead or left."""
    incarnation: int
    version: str
    since_ms: int
    shards: tuple[int, ...]
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The nodes the answering node knows of, and which shards and agents none holds."""

    node: str
    """The node that answered."""
    clustered: bool
    shard_count: int
    members: tuple[MemberInfo, ...]
    unowned_shards: tuple[int, ...]
    unowned_agents: tuple[str, ...]

    @property
    def member(self) -> MemberInfo | None:
        """The answering node's own entry."""
        return next((m for m in self.members if m.node == self.node), None)


@dataclass(frozen=True, slots=True)
class LogInfo:
    last_position: int
    store: str
    node: str


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    conversation_id: str
    deliveries: tuple[str, ...]
    dead_letters: tuple[tuple[str, str], ...]
    reply: AclMessage | None
    accepted_before: bool = field(default=False, compare=False)
    """A retry of an id the server accepted before: nothing sent again, and its reply,
    if any, not waited for again (it is in the conversation)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """Where a server is and what to reach it with: the CLI's --server, --token, --ca,
    --cert and --key."""

    address: str = DEFAULT_ADDRESS
    token: str = ""
    ca: str = ""
    cert: str = ""
    key: str = ""

    def client(self, *, timeout: float = 60.0) -> CaxtonClient:
        return CaxtonClient(
            self.address,
            token=self.token,
            timeout=timeout,
            ca=self.ca,
            cert=self.cert,
            key=self.key,
        )


class CaxtonClient:
    """`async with CaxtonClient("127.0.0.1:50051") as client: await client.agents()`.

    `https://HOST[:PORT]` connects with TLS, checking the server's certificate against `ca`
    (a PEM file; the system's CAs without one); `cert` and `key` present a client
    certificate to a server that asks for one (mutual TLS). `HOST:PORT` and `http://` are
    plain."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        token: str = "",
        timeout: float = 60.0,
        ca: str = "",
        cert: str = "",
        key: str = "",
    ) -> None:
        try:
            where = parse_server_address(address)
        except ValueError as exc:
            raise InvalidArgument(f"server address {exc}") from None
        self.address = str(where)
        self._where = where
        self._client_certificate = bool(cert)
        if (ca or cert or key) and not where.tls:
            raise InvalidArgument(
                f"a CA or client certificate was given for the plain address {address}: "
                f"write it https://{where.host_port} to connect with TLS"
            )
        try:
            self._tls = client_context(ca=ca, cert=cert, key=key) if where.tls else None
        except TlsUnusable as exc:
            raise InvalidArgument(str(exc)) from None
        self._channel = Channel(where.host, where.port, ssl=self._tls, codec=FastCodec())
        metadata = {"authorization": f"Bearer {token}"} if token else None
        self._metadata = metadata
        self._timeout = timeout
        options: dict[str, Any] = {"timeout": timeout, "metadata": metadata}
        self._agents = v1.AgentServiceStub(self._channel, **options)
        # no deadline: a deploy ends when the server answers or the connection breaks
        self._deploys = v1.AgentServiceStub(self._channel, metadata=metadata)
        self._messages = v1.MessageServiceStub(self._channel, **options)
        self._conversations = v1.ConversationServiceStub(self._channel, **options)
        self._ops = v1.OpsServiceStub(self._channel, **options)
        self._events = v1.EventServiceStub(self._channel, metadata=metadata)
        self._tools = v1.ToolServiceStub(self._channel, **options)
        self._cluster = v1.ClusterServiceStub(self._channel, **options)

    async def __aenter__(self) -> CaxtonClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    # --- agents -----------------------------------------------------------

    async def deploy(
        self,
        component: bytes,
        name: str,
        *,
        capabilities: Sequence[str] = (),
        replicas: int = 1,
        memory_bytes: int = 0,
        timeout_ms: int = 0,
        mailbox: int = 0,
        config: str = "",
        replace: bool = False,
        filename: str = "",
        tools: Sequence[str] = (),
        keep_memory: bool = False,
        snapshot_every: int | None = None,
    ) -> AgentInfo:
        """Deploys a component and answers once its instances ran `init`. No client deadline:
        a first compile of a large component takes minutes on a busy machine, and the server
        answers when it is done (or fails), or the connection breaks (docs/adr/0014)."""
        request = v1.DeployRequest(
            name=name,
            component=component,
            capabilities=list(capabilities),
            replicas=replicas,
            limits=v1.Limits(memory_bytes=memory_bytes, timeout_ms=timeout_ms, mailbox=mailbox),
            config=config,
            replace=replace,
            tools=list(tools),
            keep_memory=keep_memory,
            snapshot_every=snapshot_every,
        )
        try:
            reply = await self._call(self._deploys.deploy(request))
        except InvalidArgument as exc:
            # the server names the component by the agent; the user knows it by its file
            text = str(exc).removeprefix(f"{name}: ")
            raise InvalidArgument(f"{filename}: {text}" if filename else str(exc)) from None
        return _agent(reply)

    async def agent_memory(self, name: str, replica: int = 0, position: int = 0) -> Memory:
        """The memory of `name#replica` now (or at a position of the log)."""
        request = v1.GetAgentMemoryRequest(name=name, replica=replica, position=position)
        reply = await self._call(self._agents.get_agent_memory(request))
        return Memory(
            agent=reply.name,
            replica=reply.replica,
            state=reply.state,
            handled=reply.handled,
            restored=reply.restored,
            rebuilt=reply.rebuilt,
            position=reply.position,
            quarantined=tuple(reply.quarantined),
            rebuild_us=reply.rebuild_us,
        )

    async def agents(self) -> list[AgentInfo]:
        reply = await self._call(self._agents.list_agents(v1.ListAgentsRequest()))
        return [_agent(a) for a in reply.agents]

    async def agent(self, name: str) -> AgentInfo:
        return _agent(await self._call(self._agents.get_agent(v1.GetAgentRequest(name=name))))

    async def stop(self, name: str) -> AgentInfo:
        return _agent(await self._call(self._agents.stop_agent(v1.StopAgentRequest(name=name))))

    # --- tools ------------------------------------------------------------

    async def tool_servers(self, *, refresh: bool = True) -> list[ToolServerInfo]:
        """The server's MCP tool servers, their state and tools (`refresh` starts idle ones)."""
        reply = await self._call(self._tools.list_tools(v1.ListToolsRequest(refresh=refresh)))
        return [_tool_server(s) for s in reply.servers]

    async def call_tool(
        self, server: str, tool: str, arguments: str | Any = None
    ) -> ToolCallResult:
        """Calls one tool from outside any agent; a failed call is a result with `error`."""
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        request = v1.CallToolRequest(server=server, tool=tool, arguments_json=text)
        reply = await self._call(self._tools.call_tool(request, timeout=3_600))
        return ToolCallResult(
            result_json=reply.result_json,
            error_kind=reply.error_kind,
            error=reply.error,
            duration_us=reply.duration_us,
            truncated=reply.truncated,
        )

    async def remove(self, name: str) -> None:
        await self._call(self._agents.remove_agent(v1.RemoveAgentRequest(name=name)))

    # --- messages ---------------------------------------------------------

    async def send(
        self,
        to: str | Sequence[str],
        performative: str,
        content: str | Any = "",
        *,
        conversation_id: str = "",
        protocol: str = "",
        language: str = "json",
        ontology: str = "",
        reply_by: int | None = None,
        message_id: str = "",
        wait_ms: int = 0,
        sender: str = "",
    ) -> SendResult:
        """Sends one ACL message; with `wait_ms`, also waits that long for the reply.
        `sender` (`client:<id>`) keeps one identity across the sends of a conversation
        the caller drives itself; empty, the server gives each send a client id."""
        receivers = [to] if isinstance(to, str) else list(to)
        text = content if isinstance(content, str) else json.dumps(content)
        envelope = v1.AclEnvelope(
            id=message_id,
            performative=performative,
            sender=sender,
            receivers=receivers,
            content=text,
            language=language,
            ontology=ontology,
            protocol=protocol,
            conversation_id=conversation_id,
            reply_by=reply_by,
        )
        request = v1.SendRequest(message=envelope, wait_ms=wait_ms)
        timeout = 30.0 + wait_ms / 1000
        return _send_result(await self._call(self._messages.send(request, timeout=timeout)))

    async def send_many(self, messages: Iterable[AclMessage]) -> list[SendResult | CaxtonError]:
        """Sends many one-way messages over one stream (SendStream), in batches, without
        waiting for each: the server accepts them many at a time and acknowledges them in
        batches.

        Each message is handled as `send` would handle it (`id`, `sender` and
        `conversation_id` may be empty for the server to fill in; an id it accepted
        before is not accepted twice). Returns one entry per message, in their order:
        its SendResult, or the error `send` would have raised for it (InvalidArgument,
        Busy, ...). A failure of the stream itself (the connection lost, a message over
        the server's size limit) raises, and says how many were acknowledged before it.
        No deadline: the server reads as fast as it accepts, so a slow server slows the
        sending down rather than failing it.
        """
        results: dict[int, SendResult | CaxtonError] = {}
        sent = 0
        try:
            async with self._channel.request(
                SEND_STREAM,
                Cardinality.STREAM_STREAM,
                v1.StreamedSend,
                v1.SendAcks,
                metadata=self._metadata,
            ) as stream:
                await stream.send_request()

                async def push() -> None:
                    nonlocal sent
                    for batch in _batches(messages):
                        await stream.send_message(v1.StreamedSend(messages=batch))
                        sent += len(batch)
                    await stream.end()

                pushing = asyncio.create_task(push())
                try:
                    async for acks in stream:
                        for ack in acks.acks:
                            results[ack.index] = _acknowledged(ack)
                    await pushing
                finally:
                    pushing.cancel()
        except _TRANSPORT_ERRORS as exc:
            error = await self._failure(exc, "send many")
            raise type(error)(f"{error} ({len(results)} of {sent} messages acknowledged)") from None
        if len(results) != sent:
            raise ServerUnavailable(
                f"{self.address} ended the stream with {len(results)} of {sent} messages "
                "acknowledged"
            )
        return [results[i] for i in range(sent)]

    async def invoke(
        self,
        agent: str,
        content: str | Any,
        *,
        timeout: float = 5.0,
        performative: str = "request",
        protocol: str = "fipa-request",
    ) -> AclMessage:
        """Sends a request and returns the reply; raises InvokeTimeout when none comes in time."""
        result = await self.send(
            agent, performative, content, protocol=protocol, wait_ms=int(timeout * 1000)
        )
        if result.reply is None:
            raise InvokeTimeout(
                f"{agent} did not reply within {timeout:g}s "
                f"(conversation {result.conversation_id}; see 'caxton trace')"
            )
        return result.reply

    # --- conversations and events ------------------------------------------

    async def conversations(self, since_ms: int = 0, limit: int = 0) -> ConversationList:
        """Conversations active since `since_ms` (0: all), in the order they started; at
        most `limit` (0: the server's default, 1,000), the most recently active."""
        reply = await self._call(
            self._conversations.list_conversations(
                v1.ListConversationsRequest(since_ms=since_ms, limit=limit)
            )
        )
        return ConversationList(map(_conversation, reply.conversations), reply.truncated)

    async def conversation(self, conversation_id: str) -> ConversationInfo:
        reply = await self._call(
            self._conversations.get_conversation(v1.GetConversationRequest(id=conversation_id))
        )
        return _conversation(reply)

    async def events(
        self,
        from_position: int = 1,
        conversation_id: str = "",
        *,
        follow: bool = False,
        since_ms: int = 0,
        streams: Sequence[str] = (),
        to_position: int = 0,
    ) -> AsyncIterator[Recorded]:
        """The log's events in order; with `follow`, keeps yielding new ones as they commit.
        `streams` limits them to some streams (`agent:x`, `conversation:y`), `to_position`
        to a prefix of the log."""
        request = v1.StreamEventsRequest(
            from_position=from_position,
            conversation_id=conversation_id,
            follow=follow,
            since_ms=since_ms,
            streams=list(streams),
            to_position=to_position,
        )
        try:
            async for record in self._events.stream_events(request):
                yield Recorded(
                    position=record.position,
                    stream=record.stream,
                    version=record.version,
                    at=record.at_ms,
                    event=decode(record.type, orjson.loads(record.payload_json)),
                    traceparent=record.traceparent,
                    node=record.node,
                )
        except _TRANSPORT_ERRORS as exc:
            raise await self._failure(exc) from None

    async def log_info(self) -> LogInfo:
        """The log's last position, where it lives, and the node that answered."""
        request = v1.GetLogInfoRequest()
        reply = await self._call(self._events.get_log_info(request, timeout=self._timeout))
        return LogInfo(reply.last_position, reply.store, reply.node)

    async def component(self, digest: str) -> bytes:
        """The bytes of a component the server holds, by its digest: `sha256:<hex>` or the bare
        hex an `AgentDeployed` event holds. `NotFound` if none, `InvalidArgument` if malformed."""
        reply = await self._call(self._agents.get_component(v1.GetComponentRequest(digest=digest)))
        return bytes(reply.component)

    # --- the cluster ------------------------------------------------------

    async def members(self) -> ClusterView:
        """Every node the server's log knows of, its state, shards and agents (outside a
        cluster: the server alone, running every agent)."""
        reply = await self._call(self._cluster.list_members(v1.ListMembersRequest()))
        return ClusterView(
            node=reply.node,
            clustered=reply.clustered,
            shard_count=reply.shard_count,
            members=tuple(_member(m) for m in reply.members),
            unowned_shards=tuple(reply.unowned_shards),
            unowned_agents=tuple(reply.unowned_agents),
        )

    # --- live operations (caxton config, top, debug) ------------------------

    async def config_set(
        self,
        agent: str,
        *,
        memory_bytes: int | None = None,
        timeout_ms: int | None = None,
        mailbox: int | None = None,
        max_restarts: int | None = None,
        restart_window_ms: int | None = None,
        breaker_timeout_ms: int | None = None,
        breaker_threshold: int | None = None,
        tools: Sequence[str] | None = None,
    ) -> tuple[Setting, ...]:
        """Changes settings of a running agent, without a restart; returns all of them."""
        request = v1.SetConfigRequest(
            agent=agent,
            memory_bytes=memory_bytes,
            timeout_ms=timeout_ms,
            mailbox=mailbox,
            max_restarts=max_restarts,
            restart_window_ms=restart_window_ms,
            breaker_timeout_ms=breaker_timeout_ms,
            breaker_threshold=breaker_threshold,
            set_tools=tools is not None,
            tools=list(tools or ()),
        )
        return settings_of((await self._call(self._ops.set_config(request))).settings)

    async def config_get(self, agent: str) -> tuple[Setting, ...]:
        """An agent's effective settings and where each came from."""
        reply = await self._call(self._ops.get_config(v1.GetConfigRequest(agent=agent)))
        return settings_of(reply.settings)

    async def top(self) -> TopSnapshot:
        """Every agent's live figures and the open, stalled and violated conversations."""
        return top_of(await self._call(self._ops.top(v1.TopRequest())))

    async def debug_agent(self, agent: str, *, recent: int = 10) -> AgentDebug:
        """One agent's figures, recent traps, restarts and conversations."""
        request = v1.DebugAgentRequest(agent=agent, recent=recent)
        return debug_of(await self._call(self._ops.debug_agent(request)))

    async def _call(self, call: Any) -> Any:
        started = time.monotonic()
        try:
            return await call
        except _TRANSPORT_ERRORS as exc:
            # the stub method's name (`list_agents`) says which call was still running
            running = getattr(call, "__name__", "a request").replace("_", " ")
            raise await self._failure(exc, running, time.monotonic() - started) from None

    async def _failure(
        self, exc: Exception, running: str = "", seconds: float = 0.0
    ) -> CaxtonError:
        """The error to raise for `exc`; a connection the server dropped is asked why on a
        connection of its own (TLS spoken to a plain client, a refused client certificate)."""
        if isinstance(exc, StreamTerminatedError):
            why = await why_dropped(self._where.host, self._where.port, self._tls)
            if why:
                return self._tls_failure(why)
        return self._translate(exc, running, seconds)

    def _translate(self, exc: Exception, running: str = "", seconds: float = 0.0) -> CaxtonError:
        # the client's own timer (TimeoutError) and the server's answer to the deadline it
        # was sent (DEADLINE_EXCEEDED) race: either says the same
        deadline = isinstance(exc, GRPCError) and exc.status is Status.DEADLINE_EXCEEDED
        if deadline or isinstance(exc, TimeoutError):
            return DeadlineExceeded(
                f"{running or 'a request'} to {self.address} was still running when the "
                f"client's deadline passed ({seconds:.1f} s); the server may still finish it"
            )
        if isinstance(exc, GRPCError):
            kind = _BY_STATUS.get(exc.status, CaxtonError)
            return kind(exc.message or exc.status.name)
        if isinstance(exc, StreamTerminatedError | ProtocolError):
            during = f" during {running}" if running else ""
            return ServerUnavailable(f"the connection to {self.address} was lost{during} ({exc})")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ServerUnavailable(
                f"the certificate of the server at {self.address} is not trusted "
                f"({exc.verify_message}): give the CA that signed it with --ca FILE "
                "(ca= in Python), and an address its certificate names"
            )
        if isinstance(exc, ssl.SSLError):
            return self._tls_failure(str(exc.reason or exc))
        return ServerUnavailable(
            f"no Caxton server answers at {self.address} "
            "(start one with 'caxton server start', or pass --server)"
        )

    def _tls_failure(self, reason: str) -> CaxtonError:
        """A connection that failed in TLS (an OpenSSL reason, or DROPPED_SILENTLY), said
        as what to change on this side."""
        if self._tls is None:
            return ServerUnavailable(
                f"the server at {self.address} closed the connection without a word of "
                "HTTP/2, as a TLS server does to a plain client: if it serves TLS, write "
                f"https://{self._where.host_port} (with --ca FILE if its CA is your own)"
            )
        if reason in _CLIENT_REFUSED:
            if not self._client_certificate:
                return Unauthenticated(
                    f"the server at {self.address} closed the connection once TLS was set "
                    "up, as a server that requires client certificates does: give one its "
                    "CA signed with --cert FILE --key FILE (cert=, key= in Python)"
                )
            return Unauthenticated(
                f"the server at {self.address} closed the connection once TLS was set up: "
                "it refused the client certificate, which must be signed by the CA the "
                "server trusts (its --tls-client-ca) and be made for client authentication"
            )
        if reason == "WRONG_VERSION_NUMBER":  # the first bytes back were not TLS
            return ServerUnavailable(
                f"the server at {self.address} does not serve TLS ({reason}): write its "
                f"address without https:// ({self._where.host_port})"
            )
        return ServerUnavailable(
            f"TLS with {self.address} failed ({reason}); if the server serves plain gRPC, "
            f"write its address without https:// ({self._where.host_port})"
        )


_CLIENT_REFUSED = {
    DROPPED_SILENTLY,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
}
"""What a server that refuses the client's certificate (or its lack of one) ends with."""


def _agent(info: v1.AgentInfo) -> AgentInfo:
    limits = info.limits or v1.Limits()
    return AgentInfo(
        name=info.name,
        component_digest=digests.shown(info.component_digest),  # older servers sent bare hex
        component_size=info.component_size,
        capabilities=tuple(info.capabilities),
        replicas=info.replicas,
        status=info.status,
        status_line=info.status_line,
        memory_bytes=limits.memory_bytes,
        timeout_ms=limits.timeout_ms,
        mailbox=limits.mailbox,
        tools=tuple(info.tools),
        instances=tuple(
            InstanceInfo(
                replica=i.replica,
                lifecycle=i.lifecycle,
                incarnation=i.incarnation,
                restarts=i.restarts,
                traps=i.traps,
                handled=i.handled,
                last_error=i.last_error,
                node=i.node,
                memory=i.memory,
                memory_rebuilt=i.memory_rebuilt,
                memory_restored=i.memory_restored,
                quarantined=i.quarantined,
                memory_diverged=i.memory_diverged,
            )
            for i in info.instances
        ),
    )


def _member(info: v1.MemberInfo) -> MemberInfo:
    return MemberInfo(
        node=info.node,
        address=info.address,
        state=info.state,
        incarnation=info.incarnation,
        version=info.version,
        since_ms=info.since_ms,
        shards=tuple(info.shards),
        agents=tuple(info.agents),
    )


def _tool_server(info: v1.ToolServerInfo) -> ToolServerInfo:
    return ToolServerInfo(
        name=info.name,
        transport=info.transport,
        where=info.where,
        state=info.state,
        detail=info.detail,
        breakers=tuple(
            BreakerInfo(b.agent, b.state, b.failures, b.last_reason) for b in info.breakers
        ),
        tools=tuple(
            ToolInfo(t.name, t.description, _schema(t.input_schema_json)) for t in info.tools
        ),
        timeout_ms=info.timeout_ms,
        max_concurrency=info.max_concurrency,
        breaker_threshold=info.breaker_threshold,
        breaker_reset_ms=info.breaker_reset_ms,
        max_result_bytes=info.max_result_bytes,
    )


def _conversation(info: v1.ConversationInfo) -> ConversationInfo:
    return ConversationInfo(
        id=info.id,
        protocol=info.protocol,
        state=info.state,
        participants=tuple(info.participants),
        message_count=info.message_count,
        started_at_ms=info.started_at_ms,
        last_at_ms=info.last_at_ms,
        violations=tuple(info.violations),
        phase=info.phase,
    )


def _send_result(reply: v1.SendReply) -> SendResult:
    return SendResult(
        message_id=reply.message_id,
        conversation_id=reply.conversation_id,
        deliveries=tuple(reply.deliveries),
        dead_letters=tuple((d.receiver, d.reason) for d in reply.dead_letters),
        reply=_message(reply.reply) if reply.reply is not None else None,
        accepted_before=reply.accepted_before,
    )


def _acknowledged(ack: v1.SendAck) -> SendResult | CaxtonError:
    """A streamed message's ack as `send` would have answered: its result, or its error."""
    if ack.accepted is not None:
        return _send_result(ack.accepted)
    return _BY_STATUS.get(Status(ack.code), CaxtonError)(ack.error or Status(ack.code).name)


def _batches(messages: Iterable[AclMessage]) -> Iterator[list[v1.AclEnvelope]]:
    """The messages as envelopes, in batches that any server takes whole: a message too
    large to share one goes alone (and a server refuses it as it would refuse its Send)."""
    batch: list[v1.AclEnvelope] = []
    weight = 0
    for message in messages:
        # its JSON is longer than its protobuf encoding: quotes and names for tags
        size = len(orjson.dumps(message.to_dict()))
        if batch and (weight + size > STREAM_BATCH_BYTES or len(batch) >= STREAM_BATCH):
            yield batch
            batch, weight = [], 0
        batch.append(envelope_of(message))
        weight += size
    if batch:
        yield batch


def _message(envelope: v1.AclEnvelope) -> AclMessage:
    return message_from_stored(envelope_dict(envelope))


def _schema(text: str) -> dict[str, Any]:
    """A tool's input schema as its server reported it; {} when that is not a JSON object."""
    try:
        schema = strict_json.loads(text or "{}")
    except ValueError:
        return {}
    return schema if isinstance(schema, dict) else {}
