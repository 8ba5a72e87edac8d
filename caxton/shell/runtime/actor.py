"""One agent instance: a sandbox, a bounded mailbox, and supervision after traps.

An actor is mostly passive. A minimal agent (short time budget, no tools) is called
inline by the node, in its batch loop (`handle_now`): no task, queue hand-off or future
per message. An agent that may wait (a long budget, tool grants) runs on the worker
pool from a task of its own that drains its mailbox (`_serve_pooled`). Starting,
restarting and giving up are short scripts in a lifecycle task. Every outcome goes to
the node as a `Handled` input; the domain decides what it means.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from caxton.domain.acl import AclMessage
from caxton.domain.agents import AgentState
from caxton.domain.events import (
    AgentFailed,
    AgentRestarting,
    AgentSnapshotted,
    AgentStarted,
    MessageQuarantined,
)
from caxton.domain.frozen import positional
from caxton.domain.handling import Handled, Undelivered
from caxton.domain.ids import instance_key
from caxton.domain.memory import Plan, due, rebuilding, without
from caxton.domain.supervision import decide_restart
from caxton.shell.runtime.context import CallContext, ToolAccess
from caxton.shell.runtime.mailbox import Mailbox
from caxton.shell.runtime.memory import RebuildFailed, Rebuilt, rebuild
from caxton.shell.runtime.ports import Runtime
from caxton.shell.wasm import AgentError, AgentInstance, Completed, Outcome, Trapped

logger = logging.getLogger("caxton.runtime")

STOP_TIMEOUT_S = 10
"""How long a stop waits for a handling on the worker pool before cancelling it."""
MAX_QUARANTINED = 10
"""A rebuild that meets more poison messages than this fails: the build cannot take it."""


def envelope(message: AclMessage) -> bytes:
    """The JSON envelope a guest's `handle` receives (UTF-8). orjson refuses lone
    surrogates, which the json module escapes, so those few go through json."""
    try:
        return orjson.dumps(message.to_dict())
    except orjson.JSONEncodeError:
        return json.dumps(message.to_dict()).encode()


class InstanceActor:
    """Runs one replica of an agent until it is stopped or fails."""

    def __init__(self, runtime: Runtime, agent: str, replica: int, mailbox_size: int) -> None:
        self.runtime = runtime
        self.agent = agent
        self.replica = replica
        self.key = instance_key(agent, replica)
        self.mailbox = Mailbox(mailbox_size)
        self.started = asyncio.Event()
        """Set once an instance ran `init`, or the actor gave up trying."""
        self.finished = asyncio.Event()
        """Set once the instance stopped or failed: deliveries are refused from then on."""
        self._stopping = asyncio.Event()
        self._instance: AgentInstance | None = None
        self._incarnation = 0
        self._access = ToolAccess()
        self._busy = True  # starting, restarting, or calling on the pool
        self._task: asyncio.Task[None] | None = None
        self._memory = False
        """Whether this incarnation keeps memory (caxton.domain.memory)."""
        self._memory_handled = 0
        """Handlings its memory holds: snapshots are taken every `_every` of them."""
        self._every = 0
        self._snapshot_failed = False

    # --- what the node asks -------------------------------------------------

    def start(self) -> None:
        self._lifecycle(self._boot())

    @property
    def inline(self) -> bool:
        """Whether the node may call this instance now, in its loop, for one message."""
        instance = self._instance
        return (
            not self._busy
            and instance is not None
            and instance.runs_inline
            and not self._access.may_call
        )

    def handle_now(self, message: AclMessage) -> tuple[Handled, CallContext]:
        """Calls the guest on this thread (only when `inline`)."""
        instance = self._instance
        assert instance is not None
        context = self._context(message)
        outcome = instance.handle(envelope(message), context)
        snapshot = None
        if self._memory and not isinstance(outcome, Trapped):
            self._memory_handled += 1
            if due(self._memory_handled, self._every):
                state, taken = instance.snapshot(context)
                outcome, snapshot = self._remember(message, outcome, state, taken)
        if isinstance(outcome, Trapped):
            self._busy = True  # dead until supervision starts a new one
        # taken and called in one go: dequeued when the call started
        handled = self._handled(message, context, outcome, outcome.started_us, snapshot=snapshot)
        return handled, context

    def deliver(self, message: AclMessage, *, force: bool = False) -> str:
        """Queues a committed message; returns why it could not be, or "" when queued.
        `force`: a message accepted before a restart waits past the mailbox's bound."""
        if self.finished.is_set():
            return "instance not running"
        if not self.mailbox.put(message, force=force):
            return f"mailbox full ({self.mailbox.maxsize} messages)"
        if not self._busy:
            self.deliver_queued()
        return ""

    def supervise(self) -> None:
        """After a committed trap: restart after a back-off, or give up."""
        self._lifecycle(self._restart())

    def apply(self, agent: AgentState) -> None:
        """New settings for this running instance (`caxton config set`), without a restart:
        the mailbox at once, memory, the time budget and tool policy from the next call."""
        self.mailbox.resize(agent.limits.mailbox)
        self._access = self._tool_access(agent)
        if self._instance is not None:
            self._instance.set_limits(agent.limits)

    async def stop(self) -> list[AclMessage]:
        """Stops after the message in hand; returns the messages left in the mailbox."""
        self._stopping.set()
        self._give_up()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._close_instance()
        return self.mailbox.drain()

    # --- lifecycle ------------------------------------------------------------

    def _lifecycle(self, script: object) -> None:
        assert asyncio.iscoroutine(script)
        self._busy = True
        self._task = asyncio.get_running_loop().create_task(script, name=self.key)

    async def _boot(self) -> None:
        """Instantiates and runs `init` (or rebuilds the instance's memory); its outcome
        is committed before anything else."""
        runtime = self.runtime
        try:
            spec = runtime.agents[self.agent]
            self._incarnation = spec.instances[self.replica].incarnation + 1
            self._access = self._tool_access(spec)
            self._every = spec.snapshot_every
            self._close_instance()
            context = self._context(None)
            try:
                loaded = runtime.host.get(spec.component)
                self._instance = runtime.host.instantiate(loaded, spec.limits, name=self.agent)
            except Exception as exc:
                started = self._handled(None, context, ("instantiate", str(exc)))
            else:
                started = await self._first_call(spec, context)
            await runtime.submit([started], [context])
            if started.trap is not None:
                return  # supervision (an effect of the trap's commit) takes over
            self._busy = False
            self.started.set()
            if self.mailbox:
                self.deliver_queued()
        except Exception:
            logger.exception("actor %s crashed while starting", self.key)
            self._give_up()

    async def _first_call(self, spec: AgentState, context: CallContext) -> Handled:
        """`init`, on an instance whose memory is then rebuilt if it has one, else fresh
        (and asked whether it keeps memory from now on)."""
        instance = self._instance
        assert instance is not None
        self._memory = False
        self._memory_handled = 0
        self._snapshot_failed = False
        if instance.may_keep_memory and spec.instances[self.replica].memory_from:
            try:
                # what the previous instance handled is committed before it is read back
                await self.runtime.commit([])
                plan = await self.runtime.memory_plan(self.agent, self.replica)
                if plan is not None:
                    return await self._rebuilt(spec, plan, context)
            except Exception as exc:  # the log, say: a start that fails, recorded
                logger.exception("%s: its memory could not be rebuilt", self.key)
                return self._handled(None, context, ("init-error", f"memory rebuild: {exc}"))
        on_pool = self._access.may_call
        outcome = await instance.init_async(spec.config, context, on_pool=on_pool)
        if isinstance(outcome, AgentError):
            return self._handled(None, context, ("init-error", outcome.text))
        if isinstance(outcome, Trapped) or not instance.may_keep_memory:
            return self._handled(None, context, outcome)
        state, taken = await instance.snapshot_async(context, on_pool=on_pool)
        if isinstance(taken, Trapped):  # the instance is dead
            return self._handled(None, context, ("init-error", f"snapshot trapped: {taken.reason}"))
        if isinstance(taken, AgentError):  # it works as before, without memory
            logger.warning("%s keeps no memory: its snapshot fails: %s", self.key, taken.text)
        self._memory = bool(state)
        return self._handled(None, context, outcome, start=self._start(context, memory=bool(state)))

    async def _rebuilt(self, spec: AgentState, plan: Plan, context: CallContext) -> Handled:
        """Rebuilds the memory on the new instance: each poison message met on the way is
        quarantined (recorded) and the rebuild starts over without it."""
        runtime = self.runtime
        while True:
            instance = self._instance
            assert instance is not None
            instance.set_limits(rebuilding(spec.limits))  # slow is not poison
            try:
                result = await rebuild(instance, plan, spec.config)
            except RebuildFailed as exc:
                return self._handled(None, context, ("init-error", f"memory rebuild: {exc}"))
            if isinstance(result, Rebuilt):
                instance.set_limits(spec.limits)
                break
            if len(plan.quarantined) >= MAX_QUARANTINED:
                why = (
                    f"more than {MAX_QUARANTINED} of its inputs trap when re-executed "
                    f"(the last: {result.reason}): this build cannot take this memory"
                )
                return self._handled(None, context, ("init-error", f"memory rebuild: {why}"))
            poison = result.handling.message
            logger.warning(
                "%s: quarantined %s: its re-execution trapped (%s)",
                self.key,
                poison.id,
                result.reason,
            )
            await runtime.commit(
                [
                    MessageQuarantined(
                        agent=self.agent,
                        replica=self.replica,
                        message_id=poison.id,
                        conversation_id=poison.conversation_id,
                        reason=result.reason,
                        component=spec.component,
                    )
                ]
            )
            plan = without(plan, poison.id)
            self._close_instance()
            loaded = runtime.host.get(spec.component)
            self._instance = runtime.host.instantiate(loaded, spec.limits, name=self.agent)
        self._memory = True
        self._memory_handled = plan.restored + result.rebuilt
        context.journal.extend(plan.init_journal)  # the answers this start's init got
        start = self._start(
            context,
            memory=True,
            rebuilt=result.rebuilt,
            restored=plan.restored,
            rebuild_us=result.duration_us,
            diverged=result.diverged,
        )
        return self._handled(None, context, Completed(result.duration_us), start=start)

    def _start(self, context: CallContext, **memory: Any) -> AgentStarted:
        return AgentStarted(
            agent=self.agent,
            replica=self.replica,
            incarnation=self._incarnation,
            journal=tuple(context.journal),
            **memory,
        )

    def _remember(
        self, message: AclMessage, outcome: Outcome, state: str | None, taken: Outcome
    ) -> tuple[Outcome, AgentSnapshotted | None]:
        """A handling's outcome with the snapshot taken after it. A snapshot that traps
        takes the handling with it (the instance is dead); one that fails (a state JSON
        cannot encode, or too large) or is empty is not taken: the memory is still
        rebuilt exactly, by re-executing more."""
        if isinstance(taken, Trapped):
            why = f"snapshot trapped: {taken.reason}"
            trapped = Trapped(
                taken.kind, why, outcome.duration_us, outcome.cpu_us, outcome.started_us
            )
            return trapped, None
        limit = self.runtime.max_content_bytes
        why = taken.text if isinstance(taken, AgentError) else ""
        if state is not None and len(state) > limit and len(state.encode()) > limit:
            why = f"{len(state.encode())} bytes, over the {limit}-byte limit of a snapshot"
        if why or not state:
            if why and not self._snapshot_failed:  # once per instance: it would every N
                self._snapshot_failed = True
                logger.warning(
                    "%s: no snapshot taken (a rebuild re-executes more instead): %s",
                    self.key,
                    why,
                )
            return outcome, None
        snapshot = AgentSnapshotted(
            agent=self.agent,
            replica=self.replica,
            handled=self._memory_handled,
            state=state or "",
            message_id=message.id,
            conversation_id=message.conversation_id,
        )
        return outcome, snapshot

    def deliver_queued(self) -> None:
        """Hands the queued messages on: to the node's next round (inline), or to a task
        on the worker pool."""
        if self._stopping.is_set():
            return
        if self.inline:
            self.runtime.ready(self.key)
        elif self._instance is not None:
            self._busy = True
            self._task = asyncio.get_running_loop().create_task(self._serve_pooled(), name=self.key)

    async def _serve_pooled(self) -> None:
        """Handles the mailbox on the worker pool, one message at a time. A handling's
        events go to the node at once; the next message does not wait for their commit
        (appends are ordered, deliveries happen only after commit)."""
        instance = self._instance
        try:
            while self.mailbox and not self._stopping.is_set():
                if instance is None or self.runtime.log_failure is not None:
                    return  # stopped, or the node refuses work: no tool call goes unrecorded
                message = self.mailbox.take()
                dequeued_us = time.time_ns() // 1000  # the call starts on a worker, later
                context = self._context(message)
                outcome = await instance.handle_async(envelope(message), context, on_pool=True)
                snapshot = None
                if self._memory and not isinstance(outcome, Trapped):
                    self._memory_handled += 1
                    if due(self._memory_handled, self._every):
                        state, taken = await instance.snapshot_async(context, on_pool=True)
                        outcome, snapshot = self._remember(message, outcome, state, taken)
                handled = self._handled(message, context, outcome, dequeued_us, snapshot=snapshot)
                self.runtime.submit([handled], [context])
                if isinstance(outcome, Trapped):
                    return  # stays busy: supervision takes over after the commit
            self._busy = False
            if self.mailbox and not self._stopping.is_set():
                self.deliver_queued()  # the bound changed to inline meanwhile, say
        except Exception:
            logger.exception("actor %s crashed", self.key)
            self.finished.set()

    async def _restart(self) -> None:
        """Restart after a back-off (unless asked to stop meanwhile), or give up."""
        try:
            await self._supervised()
        except Exception:  # the log refuses appends, say: no instance any more
            logger.exception("actor %s could not be restarted", self.key)
            self._give_up()

    async def _supervised(self) -> None:
        runtime = self.runtime
        self._close_instance()
        spec = runtime.agents.get(self.agent)
        if spec is None or spec.status != "running" or self._stopping.is_set():
            self._give_up()
            return
        decision = decide_restart(
            spec.instances[self.replica],
            agent=self.agent,
            now=runtime.clock.now_ms(),
            policy=spec.restart,
        )
        await runtime.commit(decision)
        for event in decision:
            if isinstance(event, AgentFailed):
                self._give_up()  # refuse deliveries from here on; settle what is queued
                reason = f"agent failed: {event.reason}"
                left = [Undelivered(m, self.key, reason) for m in self.mailbox.drain()]
                if left:
                    await runtime.submit(left)
                return
            if isinstance(event, AgentRestarting):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), event.delay_ms / 1000)
                    self._give_up()
                    return
        await self._boot()

    def _give_up(self) -> None:
        """No instance any more: deliveries are refused, and a deploy waiting for the
        first start hears that it ended."""
        self.finished.set()
        self.started.set()

    # --- one call -----------------------------------------------------------

    def _context(self, cause: AclMessage | None) -> CallContext:
        return CallContext(
            agent=self.agent,
            cause=cause,
            clock=self.runtime.clock,
            max_content_bytes=self.runtime.max_content_bytes,
            tools=self._access,
        )

    def _tool_access(self, agent: AgentState) -> ToolAccess:
        return ToolAccess(
            bridge=self.runtime.tools,
            grants=agent.tools,
            timeout_ms=agent.tool_timeout_ms,
            breaker_threshold=agent.breaker_threshold,
        )

    def _handled(
        self,
        message: AclMessage | None,
        context: CallContext,
        outcome: Outcome | tuple[str, str],
        dequeued_us: int = 0,
        *,
        start: AgentStarted | None = None,
        snapshot: AgentSnapshotted | None = None,
    ) -> Handled:
        """The call's input for the node; `outcome` (kind, reason) for a start that failed
        before or in `init` without a trap of the guest's own; `dequeued_us` when the
        message was taken from the mailbox."""
        trap = None
        if isinstance(outcome, tuple):
            trap, outcome = outcome, Completed(duration_us=0)
        elif isinstance(outcome, Trapped):
            trap = (str(outcome.kind), outcome.reason)
        if trap is not None:
            logger.warning("%s trapped (%s: %s)", self.key, *trap)
        return _handled(
            self.agent,
            self.replica,
            self._incarnation,
            message,
            tuple(context.sent) if trap is None else (),
            tuple(context.journal),
            tuple(context.tool_events),
            outcome.duration_us,
            outcome.text if isinstance(outcome, AgentError) else "",
            trap,
            outcome.cpu_us,
            start if trap is None else None,
            snapshot if trap is None else None,
            dequeued_us,
            outcome.started_us,
        )

    def _close_instance(self) -> None:
        if self._instance is not None:
            self._instance.close()
            self._instance = None


# Handled(...) without its frozen __init__ (fields in order): one per guest call
_handled: Callable[..., Handled] = positional(Handled)
