"""Live figures for `caxton top` and `caxton debug agent`, kept from committed events.

The node hands every committed event to `LiveStats.observe`, which only appends to
bounded deques (well under a microsecond); rates and percentiles are computed when
someone asks, over the last `WINDOW_MS`.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from caxton.domain.conversations import ConversationState
from caxton.domain.events import (
    AgentRestarting,
    AgentTrapped,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.ids import is_capability, split_instance_key
from caxton.domain.stages import queue_wait_us

if TYPE_CHECKING:
    from caxton.shell.runtime.node import Node

WINDOW_MS = 5_000
_RECENT = 4_096
_QUIET = 64  # handlings kept beyond the window: a quiet agent's p99 comes from these
_HISTORY = 64
_CONVERSATIONS = 16
_DEADLINES = 10_000
_SENDS = 16_384  # messages to instances whose commit time is kept (up to twice as many)
# What is kept per agent is bounded by time as well as count: with thousands of agents,
# 4,096 handlings each would be hundreds of megabytes that only ever fill up.


@dataclass(frozen=True, slots=True)
class Trap:
    at_ms: int
    replica: int
    kind: str
    reason: str
    message_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class Restart:
    at_ms: int
    replica: int
    attempt: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Rates:
    messages_per_second: float
    p99_handling_ms: float
    cpu_ms_per_second: float
    tool_calls_per_second: float
    tool_p99_ms: float
    p99_queue_wait_ms: float = 0.0


@dataclass(slots=True)
class _AgentFigures:
    handled: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=_RECENT))
    cpu: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=_RECENT))
    """(at, CPU µs) of each guest call, trapped ones included: not its wall time."""
    tools: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=_RECENT))
    waits: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=_RECENT))
    """(at, µs) each timed message waited in the mailbox."""
    traps: deque[Trap] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    restarts: deque[Restart] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    conversations: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class Deadline:
    """A message with a reply-by whose receivers have not all answered yet."""

    reply_by: int
    message_id: str
    asker: str
    reply_with: str
    waiting: set[str]


class LiveStats:
    """Recent handlings, tool calls, traps, restarts and open deadlines, per agent."""

    def __init__(self) -> None:
        self._agents: dict[str, _AgentFigures] = {}
        self.deadlines: OrderedDict[str, Deadline] = OrderedDict()
        self._sent_at: dict[str, int] = {}
        """When recent messages to instances were committed: their queue wait's start."""

    def observe(self, recorded: Recorded) -> None:
        event = recorded.event
        at = recorded.at
        if isinstance(event, MessageHandled):
            figures = self._figures(event.agent)
            _within_window(figures.handled, at, event.duration_us)
            _within_window(figures.cpu, at, event.cpu_us)
            self._waited(figures, at, event.message_id, event.dequeued_us)
            self._touch(figures, event.conversation_id)
        elif isinstance(event, MessageSent):
            self._sent(event, at)
        elif isinstance(event, AgentTrapped):
            figures = self._figures(event.agent)
            _within_window(figures.cpu, at, event.cpu_us)
            self._waited(figures, at, event.message_id, event.dequeued_us)
            figures.traps.append(
                Trap(
                    at,
                    event.replica,
                    event.kind,
                    event.reason,
                    event.message_id,
                    event.conversation_id,
                )
            )
            self._touch(figures, event.conversation_id)
        elif isinstance(event, AgentRestarting):
            self._figures(event.agent).restarts.append(
                Restart(at, event.replica, event.attempt, event.delay_ms)
            )
        elif isinstance(event, ToolReturned | ToolFailed) and event.agent:
            _within_window(self._figures(event.agent).tools, at, event.duration_us)

    def _waited(self, figures: _AgentFigures, at: int, message_id: str, dequeued_us: int) -> None:
        sent_at = self._sent_at.get(message_id) if dequeued_us else None
        if sent_at is not None:
            _within_window(figures.waits, at, queue_wait_us(sent_at, dequeued_us))

    def _sent(self, sent: MessageSent, at: int) -> None:
        message = sent.message
        conversation = message.conversation_id
        deadline = self.deadlines.get(conversation)
        if deadline is not None and (
            deadline.asker in message.receivers
            or message.in_reply_to in (deadline.message_id, deadline.reply_with)
        ):  # an answer to whoever set the deadline, not just any message of the waited
            deadline.waiting.discard(message.sender)
            if not deadline.waiting:
                del self.deadlines[conversation]
        if message.reply_by is not None and conversation:
            waiting = {split_instance_key(d)[0] if "#" in d else d for d in sent.deliveries}
            waiting |= {r for r in message.receivers if not is_capability(r)}
            waiting.discard(message.sender)
            self.deadlines[conversation] = Deadline(
                message.reply_by, message.id, message.sender, message.reply_with, waiting
            )
            self.deadlines.move_to_end(conversation)
            while len(self.deadlines) > _DEADLINES:
                self.deadlines.popitem(last=False)
        to_instance = False
        for target in sent.deliveries:
            if "#" in target:
                to_instance = True
                self._touch(self._figures(split_instance_key(target)[0]), conversation)
        if to_instance:  # kept after its handling: a broadcast has more than one
            sent_at = self._sent_at
            sent_at[message.id] = at
            if len(sent_at) > 2 * _SENDS:  # the older half goes, at once: cheaper per send
                self._sent_at = dict(list(sent_at.items())[-_SENDS:])

    def _figures(self, agent: str) -> _AgentFigures:
        figures = self._agents.get(agent)
        if figures is None:
            figures = self._agents[agent] = _AgentFigures()
        return figures

    @staticmethod
    def _touch(figures: _AgentFigures, conversation: str) -> None:
        if not conversation:
            return
        figures.conversations[conversation] = None
        figures.conversations.move_to_end(conversation)
        if len(figures.conversations) > _CONVERSATIONS:
            figures.conversations.popitem(last=False)

    def forget(self, agent: str) -> None:
        self._agents.pop(agent, None)

    # --- what people ask ----------------------------------------------------

    def rates(self, agent: str, now_ms: int) -> Rates:
        figures = self._agents.get(agent)
        if figures is None:
            return Rates(0.0, 0.0, 0.0, 0.0, 0.0)
        since = now_ms - WINDOW_MS
        handled = [d for at, d in figures.handled if at >= since]
        tools = [d for at, d in figures.tools if at >= since]
        cpu = [d for at, d in figures.cpu if at >= since]
        waits = [d for at, d in figures.waits if at >= since]
        seconds = WINDOW_MS / 1000
        recent = handled or [d for _, d in figures.handled]
        recent_tools = tools or [d for _, d in figures.tools]
        recent_waits = waits or [d for _, d in figures.waits]
        return Rates(
            messages_per_second=len(handled) / seconds,
            p99_handling_ms=_p99(recent) / 1000,
            cpu_ms_per_second=sum(cpu) / 1000 / seconds,
            tool_calls_per_second=len(tools) / seconds,
            tool_p99_ms=_p99(recent_tools) / 1000,
            p99_queue_wait_ms=_p99(recent_waits) / 1000,
        )

    def traps(self, agent: str) -> list[Trap]:
        figures = self._agents.get(agent)
        return list(figures.traps) if figures else []

    def restarts(self, agent: str) -> list[Restart]:
        figures = self._agents.get(agent)
        return list(figures.restarts) if figures else []

    def conversations(self, agent: str) -> list[str]:
        """The agent's recent conversations, most recent first."""
        figures = self._agents.get(agent)
        return list(reversed(figures.conversations)) if figures else []


def _within_window(entries: deque[tuple[int, int]], at: int, value: int) -> None:
    """Appends, then lets go of what is older than the window beyond the last `_QUIET`."""
    entries.append((at, value))
    oldest = at - WINDOW_MS
    while len(entries) > _QUIET and entries[0][0] < oldest:
        entries.popleft()


def conversation_state(
    conversation: ConversationState, stats: LiveStats, now: int
) -> tuple[str, str]:
    """The conversation's state for people, and what is wrong. `stalled`: someone still
    waits for an answer past the reply-by (the conversation may have failed inside: the
    failure went to an agent that did not pass it on)."""
    failure = conversation.failure
    if conversation.violations:
        return "violated", conversation.violations[0].reason
    deadline = stats.deadlines.get(conversation.id)
    if (
        deadline is not None
        and deadline.waiting
        and now > deadline.reply_by
        and conversation.outcome in ("open", "failed")
    ):
        late = (now - deadline.reply_by) / 1000
        waiting = ", ".join(sorted(deadline.waiting))
        detail = f"no answer from {waiting}, {late:.1f}s past reply-by"
        return "stalled", f"{detail}; {failure}" if failure else detail
    return conversation.outcome, failure


class ConversationGauges(Collector):
    """`caxton_conversations{state}` at each scrape: stalled ones are what to alert on."""

    def __init__(self, node: Node, stats: LiveStats) -> None:
        self.node = node
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        now = self.node.clock.now_ms()
        counts = dict.fromkeys(("open", "stalled", "violated", "done", "failed"), 0)
        for conversation in list(self.node.world.conversations.values()):
            state, _ = conversation_state(conversation, self.stats, now)
            counts[state] = counts.get(state, 0) + 1
        gauge = GaugeMetricFamily(
            "caxton_conversations",
            "Conversations by state; stalled: someone waits for an answer past its reply-by.",
            labels=["state"],
        )
        for state, count in counts.items():
            gauge.add_metric([state], count)
        yield gauge


def _p99(values: list[int]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])
