"""A cursor over a recording: step, back, seek, search, breakpoints, play.

Step `n` (0 ≤ n ≤ len) means the first `n` events have happened; the event at step
`n` is `events[n - 1]` and the state is `fold(prelude, events[:n])`. Nothing is ever
re-executed: the states are folds, computed once per step and kept, so stepping back
costs what stepping forward does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from caxton.domain.events import (
    AgentTrapped,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    ShardClaimed,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import replace
from caxton.domain.world import World, evolve
from caxton.replay.nodes import step_nodes
from caxton.replay.recording import Recording


class Timeline:
    """A recording with its states by step, folded lazily and kept (folds are persistent
    structures, so keeping one per step shares almost everything)."""

    __slots__ = ("_calls", "_nodes", "_sends", "_states", "clustered", "recording")

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self._states: list[World] = [recording.prelude]
        self._sends: dict[str, int] | None = None
        self._calls: dict[str, list[int]] | None = None
        self._nodes: tuple[str, ...] | None = None
        self.clustered = recording.clustered
        """Whether steps name their node (a cluster's log)."""

    def __len__(self) -> int:
        return len(self.recording.events)

    def event(self, step: int) -> Recorded | None:
        """The event that step `step` applies; none at step 0."""
        return self.recording.events[step - 1] if 0 < step <= len(self) else None

    def state(self, step: int) -> World:
        """`fold(prelude, events[:step])`."""
        if not 0 <= step <= len(self):
            raise IndexError(f"step {step} is outside 0..{len(self)}")
        states, events = self._states, self.recording.events
        while len(states) <= step:
            states.append(evolve(states[-1], events[len(states) - 1]))
        return states[step]

    def node(self, step: int) -> str:
        """The node that made step `step`, when the log says ("" outside a cluster)."""
        if not self.clustered or not 0 < step <= len(self):
            return ""
        if self._nodes is None:
            self._nodes = step_nodes(self.recording.holders, self.recording.events)
        return self._nodes[step - 1]

    def grown(self, recording: Recording) -> Timeline:
        """The timeline of a recording that extends this one (a live conversation), keeping
        the states already folded."""
        timeline = Timeline(recording)
        if recording.events[: len(self)] == self.recording.events:
            timeline._states = self._states[:]
        return timeline

    def send_step(self, message_id: str) -> int | None:
        """The step at which a message was sent, if it is in this recording."""
        if self._sends is None:
            self._sends = {
                r.event.message.id: i
                for i, r in enumerate(self.recording.events, start=1)
                if isinstance(r.event, MessageSent)
            }
        return self._sends.get(message_id)

    def call_steps(self, call_id: str) -> tuple[int, ...]:
        """The steps of one tool call: its `ToolCalled`, then its `ToolReturned` or
        `ToolFailed` (either may be outside the recording)."""
        if self._calls is None:
            self._calls = {}
            for i, r in enumerate(self.recording.events, start=1):
                if isinstance(r.event, ToolCalled | ToolReturned | ToolFailed):
                    self._calls.setdefault(r.event.call_id, []).append(i)
        return tuple(self._calls.get(call_id, ()))


@dataclass(frozen=True, slots=True, kw_only=True)
class Breakpoints:
    """Where play stops: chosen steps, and any step about a performative or an agent."""

    steps: frozenset[int] = frozenset()
    performatives: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()

    def hit(self, step: int, recorded: Recorded | None) -> bool:
        if step in self.steps:
            return True
        if recorded is None or not (self.performatives or self.agents):
            return False
        performative, actors = about(recorded)
        return performative in self.performatives or bool(actors & self.agents)

    def __bool__(self) -> bool:
        return bool(self.steps or self.performatives or self.agents)


Predicate = Callable[[Recorded], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """Where one viewer stands in a timeline. Every move returns a new cursor."""

    timeline: Timeline
    step: int = 0
    breakpoints: Breakpoints = field(default_factory=Breakpoints)

    @classmethod
    def open(cls, recording: Recording, *, step: int | None = None) -> Cursor:
        """A cursor on the first event (or at `step`)."""
        timeline = Timeline(recording)
        first = min(1, len(timeline)) if step is None else step
        return cls(timeline=timeline).seek(first)

    @property
    def last(self) -> int:
        return len(self.timeline)

    @property
    def recorded(self) -> Recorded | None:
        return self.timeline.event(self.step)

    @property
    def state(self) -> World:
        return self.timeline.state(self.step)

    def seek(self, step: int) -> Cursor:
        """The cursor at `step`, clamped to 0..last."""
        target = max(0, min(step, self.last))
        self.timeline.state(target)  # fold now, so that reading the state is free
        return self if target == self.step else replace(self, step=target)

    def forward(self) -> Cursor:
        return self.seek(self.step + 1)

    def back(self) -> Cursor:
        return self.seek(self.step - 1)

    def home(self) -> Cursor:
        return self.seek(min(1, self.last))

    def end(self) -> Cursor:
        return self.seek(self.last)

    def find(self, matches: Predicate, *, backwards: bool = False) -> Cursor | None:
        """The cursor at the next (or previous) step whose event matches, wrapping around;
        none when no step does."""
        events = self.timeline.recording.events
        return self.find_step(lambda step: matches(events[step - 1]), backwards=backwards)

    def find_step(
        self, matches: Callable[[int], bool], *, backwards: bool = False
    ) -> Cursor | None:
        """As `find`, for a test of the step number (what a screen shows at a step needs
        more than its event: `views.search`)."""
        count = self.last
        for offset in range(1, count + 1):
            step = (self.step - 1 + (-offset if backwards else offset)) % count + 1
            if matches(step):
                return self.seek(step)
        return None

    def search(self, text: str, *, backwards: bool = False) -> Cursor | None:
        """The next step whose message (content, performative, agents) contains `text`, as
        recorded; `/` in the TUI searches the text as shown (`views.search`)."""
        needle = text.casefold()
        return self.find(lambda r: needle in searchable(r), backwards=backwards)

    def cause(self) -> Cursor | None:
        """From a handled, dead-lettered or trapping message to its send; from a send to
        the send of the message whose handling produced it. None at the first cause."""
        recorded = self.recorded
        if recorded is None:
            return None
        match recorded.event:
            case MessageHandled(message_id=mid) | MessageDeadLettered(message_id=mid):
                target = self.timeline.send_step(mid)
            case AgentTrapped(message_id=mid) if mid:
                target = self.timeline.send_step(mid)
            case MessageSent(cause=cause) if cause:
                target = self.timeline.send_step(cause)
            case _:
                target = None
        return None if target is None else self.seek(target)

    def toggle_breakpoint(self, step: int | None = None) -> Cursor:
        at = self.step if step is None else step
        steps = self.breakpoints.steps
        steps = steps - {at} if at in steps else steps | {at}
        return replace(self, breakpoints=replace(self.breakpoints, steps=steps))

    def break_on(self, *, performative: str = "", agent: str = "") -> Cursor:
        """Also stop play at every step about this performative or agent (toggles)."""
        points = self.breakpoints
        if performative:
            points = replace(points, performatives=points.performatives ^ {performative})
        if agent:
            points = replace(points, agents=points.agents ^ {agent})
        return replace(self, breakpoints=points)

    def at_breakpoint(self) -> bool:
        return self.breakpoints.hit(self.step, self.recorded)

    def play(self) -> tuple[Cursor, bool]:
        """One step of play: the next cursor, and whether play stops there (a breakpoint,
        or the end)."""
        moved = self.forward()
        return moved, moved.step >= moved.last or moved.at_breakpoint()

    def run(self) -> Cursor:
        """Plays until it stops."""
        cursor, stop = self.play()
        while not stop:
            cursor, stop = cursor.play()
        return cursor


def searchable(recorded: Recorded) -> str:
    """The text `/` searches: a message's content and envelope, or an event's reason."""
    event = recorded.event
    match event:
        case MessageSent(message=m):
            parts = (m.performative.value, m.sender, *m.receivers, m.content, m.ontology)
        case MessageHandled(agent=a, error=e):
            parts = (a, e)
        case MessageDeadLettered(receiver=r, reason=why):
            parts = (r, why)
        case AgentTrapped(agent=a, kind=k, reason=why):
            parts = (a, k, why)
        case ShardClaimed(shard=shard, node=node, previous=previous, reason=why):
            parts = ("takeover", f"shard {shard}", node, previous, why)
        case ToolCalled(agent=a, server=s, tool=t, arguments=args):
            parts = (a, f"{s}.{t}", args)
        case ToolReturned(agent=a, server=s, tool=t, result=result):
            parts = (a, f"{s}.{t}", result)
        case ToolFailed(agent=a, server=s, tool=t, reason=why):
            parts = (a, f"{s}.{t}", why)
        case _:
            parts = (type(event).__name__, getattr(event, "agent", ""))
    return "\n".join(parts).casefold()


def about(recorded: Recorded) -> tuple[str, frozenset[str]]:
    """What a breakpoint matches in an event: its performative ("" when it is not a
    message) and the names it concerns (agents, instances resolved to their agent)."""
    event = recorded.event
    match event:
        case MessageSent(message=m):
            names = {m.sender, *m.receivers, *(d.rpartition("#")[0] or d for d in event.deliveries)}
            return m.performative.value, frozenset(names)
        case MessageHandled(agent=a) | AgentTrapped(agent=a):
            return "", frozenset({a})
        case MessageDeadLettered(receiver=r):
            return "", frozenset({r.rpartition("#")[0] or r})
        case _:
            return "", frozenset({getattr(event, "agent", "")})
