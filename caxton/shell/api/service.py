"""The gRPC services: thin adapters from protobuf requests to the node's operations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from grpclib import GRPCError
from grpclib.const import Status

from caxton.domain import digests
from caxton.domain.acl import AclMessage
from caxton.domain.conversations import RETIRE_AFTER_MS
from caxton.domain.errors import quoted
from caxton.domain.events import RestartPolicy
from caxton.domain.ids import conversation_stream
from caxton.shell import history
from caxton.shell.api.cluster import ClusterService, placement_of
from caxton.shell.api.convert import (
    agent_info,
    conversation_info,
    event_record,
    limits_of,
    memory_reply,
    message_of,
    send_reply,
    snapshot_every_of,
)
from caxton.shell.api.errors import translated
from caxton.shell.api.generated.caxton import v1
from caxton.shell.runtime.errors import AgentNotFound
from caxton.shell.runtime.memory import RebuildFailed, memory_at
from caxton.shell.runtime.node import DeploySpec, Node, SendResult
from caxton.shell.store import EventLog

MAX_WAIT_MS = 300_000
STREAM_WINDOW = 1024
"""The most messages of one SendStream read and not yet acknowledged (with those of the
batch being read, at most 4,096 more)."""


class AgentService(v1.AgentServiceBase):
    def __init__(self, node: Node) -> None:
        self.node = node
        self._sandbox = asyncio.Semaphore(1)
        """Memory rebuilds for `GetAgentMemory` run on the agents' worker pool: one at a
        time, so that a replay stepping fast does not hold the pool live agents need."""

    async def deploy(self, message: v1.DeployRequest) -> v1.AgentInfo:
        async with translated():
            await self.node.deploy(
                DeploySpec(
                    name=message.name,
                    component=message.component,
                    capabilities=tuple(message.capabilities),
                    replicas=message.replicas or 1,
                    limits=limits_of(message.limits),
                    restart=RestartPolicy(),
                    config=message.config,
                    replace=message.replace,
                    tools=tuple(message.tools),
                    keep_memory=message.keep_memory,
                    snapshot_every=snapshot_every_of(message.snapshot_every),
                )
            )
            return self._info(message.name)

    async def list_agents(self, message: v1.ListAgentsRequest) -> v1.ListAgentsReply:
        agents = sorted(self.node.world.agents.values(), key=lambda a: a.name)
        where = placement_of(self.node)
        return v1.ListAgentsReply(
            agents=[agent_info(a, node=where.node_of(a.name)) for a in agents]
        )

    async def get_agent(self, message: v1.GetAgentRequest) -> v1.AgentInfo:
        async with translated():
            agent = self.node.world.agents.get(message.name)
            if agent is None:
                raise AgentNotFound(message.name)
            return self._info(agent.name)

    async def stop_agent(self, message: v1.StopAgentRequest) -> v1.AgentInfo:
        async with translated():
            await self.node.stop_agent(message.name)
            return self._info(message.name)

    async def get_component(self, message: v1.GetComponentRequest) -> v1.ComponentBytes:
        async with translated():
            digest = digests.stored(message.digest)
            wasm = await asyncio.to_thread(self.node.host.cache.source, digest)
            return v1.ComponentBytes(digest=digests.shown(digest), component=wasm)

    async def get_agent_memory(self, message: v1.GetAgentMemoryRequest) -> v1.AgentMemory:
        async with translated():
            agent = self.node.world.agents.get(message.name)
            if agent is None:
                raise AgentNotFound(message.name)
            if not 0 <= message.replica < len(agent.instances):
                raise GRPCError(
                    Status.NOT_FOUND,
                    f"{message.name} has no replica {message.replica} "
                    f"(it has {len(agent.instances)})",
                )
            if message.position < 0:
                raise GRPCError(Status.INVALID_ARGUMENT, "position: must be 0 (now) or more")
            log = self.node.log
            try:
                async with self._sandbox:  # one at a time: live agents share the pool
                    found = await memory_at(
                        log,
                        self.node.host,
                        message.name,
                        message.replica,
                        until=message.position or None,
                        fetch=log.get_component if log.shared else None,
                    )
            except RebuildFailed as exc:
                raise GRPCError(
                    Status.FAILED_PRECONDITION,
                    f"{message.name}#{message.replica}: its memory cannot be rebuilt: {exc}",
                ) from None
            if found is None:
                raise GRPCError(
                    Status.FAILED_PRECONDITION,
                    f"{message.name}#{message.replica} keeps no memory"
                    + (f" at position {message.position}" if message.position else "")
                    + ": its component exports no snapshot/restore, or its snapshot is empty",
                )
            return memory_reply(found)

    async def remove_agent(self, message: v1.RemoveAgentRequest) -> v1.RemoveAgentReply:
        async with translated():
            await self.node.remove_agent(message.name)
            return v1.RemoveAgentReply()

    def _info(self, name: str) -> v1.AgentInfo:
        return agent_info(self.node.world.agents[name], node=placement_of(self.node).node_of(name))


class MessageService(v1.MessageServiceBase):
    def __init__(self, node: Node, *, window: int = STREAM_WINDOW) -> None:
        self.node = node
        self.window = window

    async def send(self, message: v1.SendRequest) -> v1.SendReply:
        async with translated():
            if message.message is None:
                raise GRPCError(Status.INVALID_ARGUMENT, "message: is required")
            if not 0 <= message.wait_ms <= MAX_WAIT_MS:
                raise GRPCError(
                    Status.INVALID_ARGUMENT, f"wait_ms: must be between 0 and {MAX_WAIT_MS}"
                )
            acl = message_of(message.message, max_content_bytes=self.node.max_content_bytes)
            return send_reply(await self.node.send(acl, wait_ms=message.wait_ms))

    async def send_stream(
        self, messages: AsyncIterator[v1.StreamedSend]
    ) -> AsyncIterator[v1.SendAcks]:
        async for acks in StreamedSends(self.node, self.window).acknowledged(messages):
            yield acks


class StreamedSends:
    """One SendStream: its messages accepted concurrently, so that one commit of the node
    covers many, with at most `window` of them read and not yet acknowledged: beyond that
    no further batch is read, and HTTP/2 flow control holds the client back."""

    def __init__(self, node: Node, window: int) -> None:
        self.node = node
        self._unacknowledged = asyncio.Semaphore(window)
        self._settled: list[v1.SendAck] = []
        self._changed = asyncio.Event()
        self._accepting: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references
        self._unsettled = 0

    async def acknowledged(
        self, messages: AsyncIterator[v1.StreamedSend]
    ) -> AsyncIterator[v1.SendAcks]:
        """The acks, one SendAcks for whatever settled since the last; then the error of a
        batch that did not decode or was over its limits, if one ended the reading."""
        reading = asyncio.create_task(self._read(messages))
        try:
            while True:
                if self._settled:
                    acks, self._settled = self._settled, []
                    yield v1.SendAcks(acks=acks)
                    for _ in acks:
                        self._unacknowledged.release()
                elif reading.done() and not self._unsettled:
                    break
                else:
                    await self._changed.wait()
                    self._changed.clear()
            reading.result()
        finally:
            reading.cancel()  # the acceptances already started finish on their own

    async def _read(self, batches: AsyncIterator[v1.StreamedSend]) -> None:
        try:
            index = 0
            async for batch in batches:
                chunk: list[v1.AclEnvelope] = []
                for envelope in batch.messages:
                    if chunk and self._unacknowledged.locked():
                        self._start(index - len(chunk), chunk)  # what has room goes now
                        chunk = []
                    await self._unacknowledged.acquire()
                    chunk.append(envelope)
                    index += 1
                if chunk:
                    self._start(index - len(chunk), chunk)
        finally:
            self._changed.set()

    def _start(self, first: int, envelopes: list[v1.AclEnvelope]) -> None:
        self._unsettled += len(envelopes)
        accepting = asyncio.create_task(self._accept(first, envelopes))
        self._accepting.add(accepting)
        accepting.add_done_callback(self._accepting.discard)

    async def _accept(self, first: int, envelopes: list[v1.AclEnvelope]) -> None:
        """Accepts a run of messages in one batch of the node; one refused refuses no other."""
        outcomes: list[AclMessage | GRPCError] = []
        for envelope in envelopes:
            try:
                outcomes.append(message_of(envelope, max_content_bytes=self.node.max_content_bytes))
            except Exception as exc:
                outcomes.append(await _refusal(exc))
        valid = [m for m in outcomes if isinstance(m, AclMessage)]
        try:
            results: list[SendResult | Exception] = (
                await self.node.send_many(valid) if valid else []
            )
        except Exception as exc:
            results = [exc] * len(valid)
        accepted = iter(results)
        for index, outcome in enumerate(outcomes, start=first):
            settled = next(accepted) if isinstance(outcome, AclMessage) else outcome
            if isinstance(settled, Exception) and not isinstance(settled, GRPCError):
                settled = await _refusal(settled)
            if isinstance(settled, GRPCError):
                ack = v1.SendAck(
                    index=index, code=settled.status.value, error=settled.message or ""
                )
            else:
                ack = v1.SendAck(index=index, accepted=send_reply(settled))
            self._settled.append(ack)
        self._unsettled -= len(envelopes)
        self._changed.set()


async def _refusal(error: Exception) -> GRPCError:
    """The status and message unary Send answers for `error` (the one table, errors.py)."""
    try:
        async with translated():
            raise error
    except GRPCError as refused:
        return refused
    raise AssertionError("translated() raises a GRPCError for every error")  # pragma: no cover


DEFAULT_LISTING = 1_000


class ConversationService(v1.ConversationServiceBase):
    def __init__(self, node: Node) -> None:
        self.node = node

    async def list_conversations(
        self, message: v1.ListConversationsRequest
    ) -> v1.ListConversationsReply:
        limit = message.limit or DEFAULT_LISTING
        world = self.node.world.conversations
        # what the world holds is complete back to a window ago; further back, the log
        if message.since_ms >= self.node.clock.now_ms() - RETIRE_AFTER_MS:
            found = [c for c in world.values() if c.last_at >= message.since_ms]
            found.sort(key=lambda c: c.last_at, reverse=True)
            truncated = len(found) > limit
            found = found[:limit]
        else:
            async with translated():
                found, truncated = await history.conversations_since(
                    self.node.log, message.since_ms, limit
                )
        found.sort(key=lambda c: c.started_at)
        return v1.ListConversationsReply(
            conversations=[conversation_info(c) for c in found], truncated=truncated
        )

    async def get_conversation(self, message: v1.GetConversationRequest) -> v1.ConversationInfo:
        # from the log, whole: the live world may have let it go, or hold only what came
        # after it resumed (caxton.domain.conversations)
        async with translated():
            conversation = await history.conversation(self.node.log, message.id)
        if conversation is None:
            raise GRPCError(Status.NOT_FOUND, f"no conversation {quoted(message.id)} in the log")
        return conversation_info(conversation)


class EventService(v1.EventServiceBase):
    def __init__(self, node: Node, log: EventLog) -> None:
        self.node = node
        self.log = log

    async def stream_events(self, message: v1.StreamEventsRequest) -> AsyncIterator[v1.EventRecord]:
        start = max(message.from_position, 1)
        conversation = message.conversation_id or None
        async with translated():
            if message.streams:
                streams = [*message.streams]
                if conversation is not None:
                    streams.append(conversation_stream(conversation))
                chosen = await self.log.read_streams(
                    streams, to_position=message.to_position or None
                )
                for recorded in chosen:
                    if recorded.position >= start and recorded.at >= message.since_ms:
                        yield event_record(recorded)
                return
            if message.follow:
                async for recorded in self.log.follow(
                    from_position=start, conversation_id=conversation
                ):
                    if recorded.at >= message.since_ms:
                        yield event_record(recorded)
                return
            history = await self.log.read(
                from_position=start,
                conversation_id=conversation,
                since_ms=message.since_ms or None,
            )
            for recorded in history:
                if message.to_position and recorded.position > message.to_position:
                    return
                yield event_record(recorded)

    async def get_log_info(self, message: v1.GetLogInfoRequest) -> v1.LogInfo:
        return v1.LogInfo(
            last_position=await self.log.last_position(),
            store=self.log.where,
            node=self.node.node_id,
        )


def services_for(
    node: Node, log: EventLog
) -> list[AgentService | MessageService | ConversationService | EventService | ClusterService]:
    """The services that need only the node and its log (the server adds ops and tools)."""
    return [
        AgentService(node),
        MessageService(node),
        ConversationService(node),
        EventService(node, log),
        ClusterService(node),
    ]
