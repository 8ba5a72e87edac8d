"""The node: folds the log into the world, runs the actors, and serves the API's operations.

Every change goes the same way: decide events from the folded world, append them,
and only once they are committed fold them in and deliver the messages they accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace

from caxton import __version__
from caxton.domain.acl import AclMessage, from_client, is_final_reply
from caxton.domain.agents import AgentState
from caxton.domain.delivery import NO_PENDING, in_log_order, settle
from caxton.domain.deployment import validate_deployment
from caxton.domain.events import (
    AgentDeployed,
    AgentReconfigured,
    AgentRemoved,
    AgentStopped,
    Event,
    Limits,
    MessageDeadLettered,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    RestartPolicy,
)
from caxton.domain.ids import conversation_stream, is_client, split_instance_key
from caxton.domain.routing import NO_CURSOR, route
from caxton.domain.sending import platform_failure
from caxton.domain.settings import validate_reconfiguration
from caxton.domain.tools import validate_grants
from caxton.domain.tracing import stamped
from caxton.domain.world import EMPTY, World, evolve
from caxton.shell.runtime.actor import InstanceActor
from caxton.shell.runtime.clock import Clock, client_address, fresh_id
from caxton.shell.runtime.context import CallContext, ToolAccess
from caxton.shell.runtime.errors import (
    AgentExists,
    AgentNotFound,
    LogFailed,
    MailboxFull,
    NodeStopping,
)
from caxton.shell.store import EventLog, Pending, StoreError
from caxton.shell.tools import ToolCaller
from caxton.shell.wasm import WasmHost, check_memory

logger = logging.getLogger("caxton.runtime")

# A client may retry a send with the same id: the node answers it from what it accepted
# in the last two minutes (at most this many ids), instead of accepting it twice.
RETRY_WINDOW_MS = 120_000
_ACCEPTED_MEMORY = 50_000


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    conversation_id: str
    deliveries: tuple[str, ...]
    dead_letters: tuple[tuple[str, str], ...]
    reply: AclMessage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploySpec:
    name: str
    component: bytes
    capabilities: tuple[str, ...] = ()
    replicas: int = 1
    limits: Limits = field(default_factory=Limits)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    config: str = ""
    replace: bool = False
    tools: tuple[str, ...] = ()


_Acceptance = SendResult | asyncio.Future[SendResult]


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pauses the cyclic garbage collector (reference counting still frees everything
    the fold lets go): it would scan the growing world again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Node:
    """One Caxton server's runtime."""

    def __init__(
        self,
        *,
        log: EventLog,
        host: WasmHost,
        clock: Clock,
        node_id: str,
        address: str = "",
        max_content_bytes: int = 1 << 20,
        tools: ToolCaller | None = None,
    ) -> None:
        self.log = log
        self.tools = tools
        self.host = host
        self.clock = clock
        self.node_id = node_id
        self.address = address
        self.max_content_bytes = max_content_bytes
        self.world: World = EMPTY
        self.actors: dict[str, InstanceActor] = {}
        self._cursor = NO_CURSOR
        self._waiters: dict[str, list[tuple[str, asyncio.Future[AclMessage | None]]]] = {}
        self._waiters_by_id: dict[str, asyncio.Future[AclMessage | None]] = {}
        # client message id -> (when accepted, its result, or a future while committing)
        self._accepted: OrderedDict[str, tuple[int, _Acceptance]] = OrderedDict()
        self._agent_locks: dict[str, asyncio.Lock] = {}
        self._started = False
        self._stopping = False
        self._commit_failed: BaseException | None = None
        self.observers: list[Callable[[Recorded], None]] = []
        """Called with every committed event, in order (metrics, live figures): keep cheap."""
        log.observe_landed(self._landed, self._append_failed)

    # --- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Folds the log, records the start, restarts agents and redelivers what was pending."""
        await self.log.check_integrity()
        world, pending = EMPTY, NO_PENDING
        recent: deque[Recorded] = deque(maxlen=_ACCEPTED_MEMORY)
        with _no_cyclic_gc():  # the fold makes only acyclic garbage; the collector cost ~30%
            async for page in self.log.pages():  # page by page: never all of it in memory
                for recorded in page:
                    world = evolve(world, recorded)
                    pending = settle(pending, recorded)
                    event = recorded.event
                    if isinstance(event, MessageSent) and is_client(event.message.sender):
                        recent.append(recorded)
        self.world = world
        for recorded in recent:
            assert isinstance(recorded.event, MessageSent)
            m, deliveries = recorded.event.message, recorded.event.deliveries
            self._accepted[m.id] = (
                recorded.at,
                SendResult(m.id, m.conversation_id, deliveries, ()),
            )
        self._trim_accepted()
        await self.commit(
            [NodeStarted(node=self.node_id, address=self.address, version=__version__)]
        )
        self._started = True
        for name, agent in self.world.agents.items():
            if agent.status == "running":
                self._start_actors(name, agent.limits.mailbox, len(agent.instances))
        for message, target in in_log_order(pending):
            actor = self.actors.get(target)
            # waits for room: an accepted message is never dropped for a full mailbox here
            refused = await actor.redeliver(message) if actor is not None else "agent not running"
            if refused:
                await self.commit(self._undeliverable(message, target, refused))
        logger.info(
            "node %s started at position %d with %d agents",
            self.node_id,
            self.world.position,
            len(self.world.agents),
        )

    async def shutdown(self) -> None:
        """Stops the actors (agents stay deployed) and records the stop."""
        if self._stopping:
            return
        self._stopping = True
        await asyncio.gather(*(a.stop() for a in self.actors.values()))
        self.actors.clear()
        for waiters in self._waiters.values():
            for _, fut in waiters:
                if not fut.done():
                    fut.cancel()
        if self._started and self._commit_failed is None:
            # a stop the log refuses (a full disk) is logged as it fails and reads as a crash
            # later; the server must still close its log and threads (it hung instead)
            with contextlib.suppress(StoreError):
                await self.commit([NodeStopped(node=self.node_id)])

    # --- the commit path --------------------------------------------------

    def commit(
        self,
        events: Sequence[Event],
        traceparent: str | Sequence[str] = "",
        *,
        new_streams: Collection[str] = (),
    ) -> asyncio.Future[list[Recorded]]:
        """Appends; once committed, folds the events in and delivers accepted messages.

        `traceparent` is the trace context of every event, or one per event (an actor's
        batch of handlings, each with the context of the message it handled).
        `new_streams` are streams known not to be in the log yet (`EventLog.append`)."""
        at = self.clock.now_ms()
        if isinstance(traceparent, str):
            pending = [Pending(event=e, at=at, traceparent=traceparent) for e in events]
        else:
            pending = [
                Pending(event=e, at=at, traceparent=t)
                for e, t in zip(events, traceparent, strict=True)
            ]
        return self.log.append(pending, new_streams=new_streams)

    @property
    def log_failure(self) -> BaseException | None:
        """The failed append that made this node refuse work until restarted, if any."""
        return self._commit_failed

    def _append_failed(self, error: BaseException) -> None:
        # the log and this node's world may now differ: refuse work until a restart
        self._commit_failed = error
        logger.error("append failed, refusing further work until restarted: %s", error)

    def _landed(self, batch: list[Recorded]) -> None:
        """Folds in each committed event and delivers the messages accepted, in log order:
        called by the log as the batch commits, before anyone awaiting it resumes, and
        also for events whose appender stopped waiting (they are in the log all the same)."""
        for recorded in batch:
            self.world = evolve(self.world, recorded)
            for observe in self.observers:
                observe(recorded)
            if isinstance(recorded.event, MessageSent):
                self._dispatch(recorded.event)

    def _dispatch(self, sent: MessageSent) -> None:
        if self._stopping:
            return  # committed but undelivered: the next start redelivers it
        message = sent.message
        for target in sent.deliveries:
            if is_client(target):
                self._to_client(target, message)
                continue
            actor = self.actors.get(target)
            refused = actor.deliver(message) if actor is not None else "agent not running"
            if refused:
                self.commit(self._undeliverable(message, target, refused))

    # --- what agents send -------------------------------------------------

    def call_context(self, agent: str, cause: AclMessage | None) -> CallContext:
        state = self.world.agents.get(agent)
        return CallContext(
            agent=agent,
            cause=cause,
            clock=self.clock,
            route=self._route,
            max_content_bytes=self.max_content_bytes,
            tools=ToolAccess(
                bridge=self.tools,
                grants=state.tools if state is not None else (),
                timeout_ms=state.tool_timeout_ms if state is not None else 0,
                breaker_threshold=state.breaker_threshold if state is not None else 0,
            ),
        )

    def _route(self, message: AclMessage) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        decided = route(message, self.world.agents, self._cursor)
        self._cursor = decided.cursor
        return decided.deliveries, decided.dead_letters

    def sends_of(self, context: CallContext) -> list[Event]:
        """What a guest call produced: its tool calls (in order), then the messages it sent."""
        events: list[Event] = []
        self.sends_into(context, events)
        return events

    def sends_into(self, context: CallContext, events: list[Event]) -> None:
        """`sends_of`, appended to `events`."""
        events.extend(context.tool_events)
        cause = context.cause.id if context.cause is not None else ""
        for out in context.outgoing:
            events.append(MessageSent(message=out.message, deliveries=out.deliveries, cause=cause))
            for receiver, reason in out.dead_letters:
                events.extend(self._undeliverable(out.message, receiver, reason))

    def failure_to_sender(self, message: AclMessage, reason: str) -> list[Event]:
        """A `failure` from the platform back to whoever sent `message`."""
        failure = platform_failure(message, reason)
        if failure is None:
            return []
        deliveries, _ = self._route(failure)
        return [MessageSent(message=failure, deliveries=deliveries, cause=message.id)]

    def _undeliverable(self, message: AclMessage, receiver: str, reason: str) -> list[Event]:
        dead = MessageDeadLettered(
            message_id=message.id,
            conversation_id=message.conversation_id,
            receiver=receiver,
            reason=reason,
        )
        return [dead, *self.failure_to_sender(message, f"{receiver}: {reason}")]

    async def dead_letter_all(self, messages: list[AclMessage], receiver: str, reason: str) -> None:
        events: list[Event] = []
        for message in messages:
            events.extend(self._undeliverable(message, receiver, reason))
        if events:
            await self.commit(events)

    # --- agents -----------------------------------------------------------

    async def deploy(self, spec: DeploySpec) -> None:
        self._check_running()
        validate_deployment(
            spec.name,
            replicas=spec.replicas,
            capabilities=spec.capabilities,
            limits=spec.limits,
            config=spec.config,
        )
        grants = validate_grants(spec.tools, self.tools.servers if self.tools is not None else {})
        spec = dataclass_replace(spec, tools=grants)
        async with self._agent_lock(spec.name):
            await self._deploy(spec)

    async def _deploy(self, spec: DeploySpec) -> None:
        existing = self.world.agents.get(spec.name)
        if existing is not None and not spec.replace:
            raise AgentExists(spec.name)
        # compiling can take seconds (a Python agent): off the loop, unless already loaded
        loaded = self.host.cache.loaded(spec.component)
        if loaded is None:
            loaded = await asyncio.to_thread(self.host.load, spec.component, spec.name)
        check_memory(loaded.initial_memory, spec.limits.memory_bytes, spec.name)
        if existing is not None:
            await self._stop_actors(spec.name, "agent redeployed")
        await self.commit(
            [
                AgentDeployed(
                    agent=spec.name,
                    component=loaded.digest,
                    component_size=loaded.size,
                    replicas=spec.replicas,
                    capabilities=spec.capabilities,
                    limits=spec.limits,
                    restart=spec.restart,
                    config=spec.config,
                    tools=spec.tools,
                )
            ]
        )
        actors = self._start_actors(spec.name, spec.limits.mailbox, spec.replicas)
        # answer once every instance ran init (or gave up), so `status` is true at once
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(spec.limits.timeout_ms / 1000 + 5):
                for actor in actors:
                    await actor.started.wait()

    async def stop_agent(self, name: str) -> None:
        self._check_running()
        async with self._agent_lock(name):
            agent = self.world.agents.get(name)
            if agent is None:
                raise AgentNotFound(name)
            await self._stop_actors(name, "agent stopped")
            if agent.status != "stopped":
                await self.commit([AgentStopped(agent=name)])

    async def remove_agent(self, name: str) -> None:
        self._check_running()
        async with self._agent_lock(name):
            if name not in self.world.agents:
                raise AgentNotFound(name)
            await self._stop_actors(name, "agent removed")
            await self.commit([AgentRemoved(agent=name)])

    async def reconfigure(self, change: AgentReconfigured) -> AgentState:
        """`caxton config set`: validates, records the change, and applies it to the running
        instances without restarting them. Returns the agent as it is now."""
        self._check_running()
        validate_reconfiguration(change)
        async with self._agent_lock(change.agent):
            if change.agent not in self.world.agents:
                raise AgentNotFound(change.agent)
            await self.commit([change])
            agent = self.world.agents[change.agent]
            for key, actor in self.actors.items():
                if split_instance_key(key)[0] == change.agent:
                    actor.apply(agent.limits)
            return agent

    def _agent_lock(self, name: str) -> asyncio.Lock:
        """Deploy, stop and remove of one name run one at a time."""
        return self._agent_locks.setdefault(name, asyncio.Lock())

    def _start_actors(self, name: str, mailbox: int, replicas: int) -> list[InstanceActor]:
        started = []
        agent = self.world.agents[name]
        for replica in range(replicas):
            if agent.instances[replica].lifecycle == "failed":
                continue
            actor = InstanceActor(self, name, replica, mailbox)
            self.actors[actor.key] = actor
            actor.start()
            started.append(actor)
        return started

    async def _stop_actors(self, name: str, reason: str) -> None:
        keys = [k for k in self.actors if split_instance_key(k)[0] == name]
        for key in keys:
            actor = self.actors.pop(key)
            left = await actor.stop()
            await self.dead_letter_all(left, key, reason)

    # --- messages from outside -------------------------------------------

    async def send(self, message: AclMessage, *, wait_ms: int = 0) -> SendResult:
        """Accepts a message from an API client; with `wait_ms`, waits for the reply.

        A message id the node accepted in the last two minutes (`RETRY_WINDOW_MS`, also
        across a restart) is not accepted twice: the caller gets the first acceptance's
        result, so clients can retry safely.
        """
        self._check_running()
        self._trim_accepted()
        known = self._accepted.get(message.id) if message.id else None
        if known is not None:
            earlier = known[1]
            return earlier if isinstance(earlier, SendResult) else await asyncio.shield(earlier)
        # a conversation id made here at random names a stream the log cannot hold yet
        started = not message.conversation_id
        message = stamped(
            from_client(
                message,
                id=message.id or fresh_id(),
                sender=message.sender or client_address(),
                conversation_id=message.conversation_id or fresh_id(),
            )
        )
        accepted: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        accepted_at = self.clock.now_ms()
        self._accepted[message.id] = (accepted_at, accepted)
        try:
            result = await self._accept(message, wait_ms, started)
        except BaseException as exc:
            self._accepted.pop(message.id, None)  # not accepted: a retry may try again
            accepted.set_exception(exc)
            accepted.exception()  # retrieved: whoever awaited it got it
            raise
        accepted.set_result(result)  # for a retry that came while this one was committing
        self._accepted[message.id] = (accepted_at, result)
        if wait_ms <= 0:
            return result
        waiter = self._waiters_by_id.pop(message.id)
        # a timer that answers None, not asyncio.wait_for: no second future and callback
        timer = asyncio.get_running_loop().call_later(wait_ms / 1000, _no_reply, waiter)
        try:
            reply = await waiter
        finally:
            timer.cancel()
            self._forget_waiter(message.sender, waiter)
        return SendResult(
            result.message_id, result.conversation_id, result.deliveries, result.dead_letters, reply
        )

    async def _accept(self, message: AclMessage, wait_ms: int, started: bool) -> SendResult:
        deliveries, dead = self._route(message)
        reserved = [a for a in (self.actors.get(t) for t in deliveries) if a is not None]
        for actor in reserved:
            if actor.free_slots <= 0:
                raise MailboxFull(actor.key, actor.mailbox.maxsize)
        if wait_ms > 0:  # before the commit, so that no reply can come first
            self._waiters_by_id[message.id] = self._wait_for_reply(message)
        events: list[Event] = [MessageSent(message=message, deliveries=deliveries)]
        for receiver, reason in dead:
            events.extend(self._undeliverable(message, receiver, reason))
        for actor in reserved:
            actor.reserved += 1
        try:
            new = (conversation_stream(message.conversation_id),) if started else ()
            await self.commit(events, new_streams=new)
        except BaseException:
            waiter = self._waiters_by_id.pop(message.id, None)
            if waiter is not None:
                self._forget_waiter(message.sender, waiter)
            raise
        finally:
            for actor in reserved:
                actor.reserved -= 1
        return SendResult(message.id, message.conversation_id, deliveries, dead)

    def _wait_for_reply(self, message: AclMessage) -> asyncio.Future[AclMessage | None]:
        future: asyncio.Future[AclMessage | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message.sender, []).append((message.conversation_id, future))
        return future

    def _forget_waiter(self, client: str, future: asyncio.Future[AclMessage | None]) -> None:
        waiters = [w for w in self._waiters.get(client, []) if w[1] is not future]
        if waiters:
            self._waiters[client] = waiters
        else:
            self._waiters.pop(client, None)

    def _to_client(self, client: str, message: AclMessage) -> None:
        if not is_final_reply(message):
            return
        for conversation, future in self._waiters.get(client, []):
            if conversation == message.conversation_id and not future.done():
                future.set_result(message)

    def _trim_accepted(self) -> None:
        """Forgets ids accepted before the retry window, and the oldest beyond the cap."""
        oldest = self.clock.now_ms() - RETRY_WINDOW_MS
        accepted = self._accepted
        while accepted and (
            len(accepted) > _ACCEPTED_MEMORY or next(iter(accepted.values()))[0] < oldest
        ):
            accepted.popitem(last=False)

    def _check_running(self) -> None:
        if self._stopping:
            raise NodeStopping()
        if self._commit_failed is not None:
            raise LogFailed(self._commit_failed)


def _no_reply(waiter: asyncio.Future[AclMessage | None]) -> None:
    """The wait for a reply ran out: the send answers without one."""
    if not waiter.done():
        waiter.set_result(None)
