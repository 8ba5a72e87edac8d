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
from caxton.shell.wasm import AgentError, AgentInstance, Completed, Trapped

if TYPE_CHECKING:
    from caxton.shell.runtime.node import Node

logger = logging.getLogger("caxton.runtime")


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
        """Handles messages until stopped (False) or trapped (True)."""
        node = self.node
        instance = self._instance
        assert instance is not None
        while True:
            message = await self.mailbox.get()
            if message is None:
                return False
            context = node.call_context(self.agent, message)
            outcome = await instance.handle_async(
                json.dumps(message.to_dict()), context, on_pool=context.may_wait
            )
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
                await node.commit(events, message.traceparent)
                return True
            handled = MessageHandled(
                message_id=message.id,
                conversation_id=message.conversation_id,
                agent=self.agent,
                replica=self.replica,
                journal=tuple(context.journal),
                duration_us=outcome.duration_us,
                error=outcome.text if isinstance(outcome, AgentError) else "",
            )
            events = [handled, *node.sends_of(context)]
            if isinstance(outcome, AgentError):
                events.extend(node.failure_to_sender(message, outcome.text))
            node.commit(events, message.traceparent)
            assert isinstance(outcome, Completed | AgentError)

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
