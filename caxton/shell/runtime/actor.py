"""One running agent instance: a bounded mailbox, a sandbox, and supervision after traps.

Each handling is a short script: take a message, call the guest, turn the outcome
into events, append them. The actor does not wait for the commit before taking the
next message (appends are ordered, and deliveries happen only after commit); it does
wait after a trap, because supervision decides from the committed history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

import orjson

from caxton.domain.acl import AclMessage
from caxton.domain.events import (
    AgentFailed,
    AgentRestarting,
    AgentStarted,
    AgentTrapped,
    Event,
    Limits,
    MessageDeadLettered,
    MessageHandled,
)
from caxton.domain.ids import instance_key
from caxton.domain.supervision import decide_restart
from caxton.shell.runtime.mailbox import Mailbox
from caxton.shell.wasm import AgentError, AgentInstance, Trapped

if TYPE_CHECKING:
    from caxton.shell.runtime.node import Node

logger = logging.getLogger("caxton.runtime")

MAX_BATCH = 256
"""Events of handlings appended together, about: bounds one transaction and the stall."""


def envelope(message: AclMessage) -> bytes:
    """The JSON envelope a guest's `handle` receives (UTF-8). orjson refuses lone
    surrogates, which the json module escapes, so those few go through json."""
    try:
        return orjson.dumps(message.to_dict())
    except orjson.JSONEncodeError:
        return json.dumps(message.to_dict()).encode()


class InstanceActor:
    """Runs one replica of an agent until it is stopped or fails."""

    def __init__(self, node: Node, agent: str, replica: int, mailbox_size: int) -> None:
        self.node = node
        self.agent = agent
        self.replica = replica
        self.key = instance_key(agent, replica)
        self.mailbox = Mailbox(maxsize=mailbox_size)
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.reserved = 0  # slots promised to sends that are being committed
        self._stopping = asyncio.Event()
        self._instance: AgentInstance | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.key)

    def deliver(self, message: AclMessage) -> str:
        """Queues a committed message; returns why it could not be, or "" when queued."""
        if self.finished.is_set():
            return "instance not running"
        try:
            self.mailbox.put_nowait(message)
        except asyncio.QueueFull:
            return f"mailbox full ({self.mailbox.maxsize} messages)"
        return ""

    async def redeliver(self, message: AclMessage) -> str:
        """Queues a message accepted before a restart, waiting for room rather than refusing."""
        if self.finished.is_set():
            return "instance not running"
        try:
            self.mailbox.put_nowait(message)
            return ""
        except asyncio.QueueFull:
            pass
        put = asyncio.ensure_future(self.mailbox.put(message))
        gone = asyncio.ensure_future(self.finished.wait())
        await asyncio.wait({put, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if put.done():
            return ""
        put.cancel()
        return "instance not running"

    def apply(self, limits: Limits) -> None:
        """New limits for this running instance (`caxton config set`), without a restart:
        the mailbox at once, memory and the time budget from the next call."""
        self.mailbox.resize(limits.mailbox)
        if self._instance is not None:
            self._instance.set_limits(limits)

    @property
    def free_slots(self) -> int:
        return self.mailbox.maxsize - self.mailbox.qsize() - self.reserved

    async def stop(self) -> list[AclMessage]:
        """Stops after the message in hand; returns the messages left in the mailbox."""
        self._stopping.set()
        left = self._drain()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(asyncio.QueueFull):
                self.mailbox.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._close_instance()
        return left + self._drain()

    def _drain(self) -> list[AclMessage]:
        left: list[AclMessage] = []
        while not self.mailbox.empty():
            item = self.mailbox.get_nowait()
            if item is not None:
                left.append(item)
        return left

    async def _run(self) -> None:
        try:
            while True:
                if not await self._start_instance():
                    if not await self._supervise():
                        return
                    continue
                if not await self._serve():
                    return
                if not await self._supervise():
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("actor %s crashed", self.key)
        finally:
            self.started.set()
            self.finished.set()

    async def _start_instance(self) -> bool:
        node = self.node
        spec = node.world.agents[self.agent]
        incarnation = node.world.agents[self.agent].instances[self.replica].incarnation + 1
        self._close_instance()
        try:
            loaded = node.host.get(spec.component)
            self._instance = node.host.instantiate(loaded, spec.limits, name=self.agent)
        except Exception as exc:
            await node.commit([self._trapped(incarnation, "instantiate", str(exc), None)])
            return False
        context = node.call_context(self.agent, None)
        outcome = await self._instance.init_async(spec.config, context, on_pool=context.may_wait)
        if isinstance(outcome, Trapped | AgentError):
            kind, reason = (
                (outcome.kind, outcome.reason)
                if isinstance(outcome, Trapped)
                else ("init-error", outcome.text)
            )
            await node.commit([self._trapped(incarnation, kind, reason, None)])
            return False
        events: list[Event] = [
            AgentStarted(
                agent=self.agent,
                replica=self.replica,
                incarnation=incarnation,
                journal=tuple(context.journal),
            )
        ]
        events.extend(node.sends_of(context))
        await node.commit(events)
        self.started.set()
        return True

    async def _serve(self) -> bool:
        """Handles messages until stopped (False) or trapped (True).

        Every message already queued is handled in the same task step, and their
        handlings are appended together (up to about `MAX_BATCH` events): one append, one
        future and one commit callback for the lot instead of one each. Each handling's
        events stay together in that transaction, so a handling and its sends still commit
        at once. A handling run on the worker pool (a long budget, tools) is appended at
        once: the next one may take long, and what is done should not wait for it."""
        node = self.node
        instance = self._instance
        mailbox = self.mailbox
        assert instance is not None
        while True:
            message = await mailbox.get()  # suspends only when the mailbox is empty
            events: list[Event] = []
            contexts: list[str] = []  # each event's trace context: its handled message's
            while True:
                if message is None:
                    if events:
                        node.commit(events, contexts)
                    return False
                handling, trapped, pooled = await self._handle(instance, message)
                events += handling
                contexts += [message.traceparent] * len(handling)
                if trapped:  # supervision decides from the committed history: wait for it
                    await node.commit(events, contexts)
                    return True
                if pooled or len(contexts) >= MAX_BATCH or mailbox.empty():
                    break
                message = mailbox.get_nowait()
            node.commit(events, contexts)

    async def _handle(
        self, instance: AgentInstance, message: AclMessage
    ) -> tuple[list[Event], bool, bool]:
        """One handling's events (in the order they are appended), whether it trapped, and
        whether it ran on the worker pool."""
        node = self.node
        context = node.call_context(self.agent, message)
        pooled = context.may_wait or not instance.runs_inline
        outcome = await instance.handle_async(envelope(message), context, on_pool=pooled)
        if isinstance(outcome, Trapped):
            incarnation = node.world.agents[self.agent].instances[self.replica].incarnation
            reason = f"{outcome.kind}: {outcome.reason}"
            events: list[Event] = [
                *context.tool_events,  # calls made before the trap happened all the same
                self._trapped(
                    incarnation, outcome.kind, outcome.reason, message, outcome.duration_us
                ),
                MessageDeadLettered(
                    message_id=message.id,
                    conversation_id=message.conversation_id,
                    receiver=self.key,
                    reason=reason,
                ),
            ]
            events.extend(node.failure_to_sender(message, reason))
            return events, True, pooled
        handled = MessageHandled(
            message_id=message.id,
            conversation_id=message.conversation_id,
            agent=self.agent,
            replica=self.replica,
            journal=tuple(context.journal),
            duration_us=outcome.duration_us,
            error=outcome.text if isinstance(outcome, AgentError) else "",
        )
        events = [handled]
        node.sends_into(context, events)
        if isinstance(outcome, AgentError):
            events.extend(node.failure_to_sender(message, outcome.text))
        return events, False, pooled

    async def _supervise(self) -> bool:
        """After a trap: restart after a back-off (True) or give up (False)."""
        node = self.node
        self._close_instance()
        spec = node.world.agents.get(self.agent)
        if spec is None or spec.status != "running":
            return False
        decision = decide_restart(
            spec.instances[self.replica],
            agent=self.agent,
            now=node.clock.now_ms(),
            policy=spec.restart,
        )
        await node.commit(decision)
        for event in decision:
            if isinstance(event, AgentFailed):
                self.finished.set()  # refuse deliveries from here on; settle what is queued
                await node.dead_letter_all(self._drain(), self.key, f"agent failed: {event.reason}")
                return False
            if isinstance(event, AgentRestarting):
                try:  # back off, unless asked to stop meanwhile
                    await asyncio.wait_for(self._stopping.wait(), event.delay_ms / 1000)
                    return False
                except TimeoutError:
                    pass
        return True

    def _trapped(
        self,
        incarnation: int,
        kind: str,
        reason: str,
        message: AclMessage | None,
        duration_us: int = 0,
    ) -> AgentTrapped:
        logger.warning("%s trapped (%s: %s)", self.key, kind, reason)
        return AgentTrapped(
            agent=self.agent,
            replica=self.replica,
            incarnation=incarnation,
            kind=kind,
            reason=reason,
            message_id=message.id if message else "",
            conversation_id=message.conversation_id if message else "",
            duration_us=duration_us,
        )

    def _close_instance(self) -> None:
        if self._instance is not None:
            self._instance.close()
            self._instance = None
