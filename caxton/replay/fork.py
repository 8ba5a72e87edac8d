"""Forking a conversation: one recorded message edited, and what follows from it run
again in the sandbox (`caxton replay --conversation ID --fork-at STEP --edit F=V`).

The steps before STEP are the record's. From STEP on, the recorded events are walked in
order: a handling whose input changed (the edited message, or one a re-executed agent
now sends differently) is re-executed by the agent's recorded build, and so is every
later handling of an agent already re-executed (its state may differ from then on).
Everything else stays as recorded: where an input did not change, its answers come from
the record. A re-executed agent first catches up: a fresh instance, `init`, and its
recorded inputs before the fork point, fed their recorded journals.

A re-executed handling is fed the journal recorded for that handling (`now`, `random`,
tool results); a handling the record never had (a new message or receiver) gets no
journal, so its host questions are answered neutrally and noted. What the agents run
on is the `Runner` the shell passes in: this module decides, and runs nothing itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from caxton.domain.acl import AclMessage
from caxton.domain.events import (
    AgentTrapped,
    Event,
    HostCall,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    stream_of,
)
from caxton.domain.ids import instance_key, is_client, split_instance_key
from caxton.domain.protocols import agent_of
from caxton.domain.routing import route
from caxton.domain.world import World, evolve
from caxton.replay.cursor import Timeline
from caxton.replay.edits import BadEdit, edited, sent_at
from caxton.replay.recording import Recording
from caxton.replay.reexec import Script, agent_script, compare
from caxton.replay.views import format_row, one_line, rows

MAX_NEW_HANDLINGS = 1_000
"""How many handlings the record never had a fork runs before it stops: agents that
answer each other forever would otherwise never let it end."""

Mark = Literal["recorded", "edited", "re-executed", "same", "changed", "new"]
"""How a step of the fork came about: as recorded; the edited message; a handling run
again; a message a re-executed agent sent as recorded (`same`) or otherwise (`changed`);
something the record never had (`new`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handling:
    """What an agent's build did with one message."""

    sent: tuple[AclMessage, ...] = ()
    error: str = ""
    trap: str = ""
    """`kind: reason`, or "" when it did not trap."""
    surprises: tuple[str, ...] = ()


class Runner(Protocol):
    """Runs the agents' recorded builds (the shell: wasmtime, sends collected)."""

    def start(self, plan: Script, replica: int) -> str:
        """A fresh instance of `plan.agent`'s build, its `init` run as recorded; "" when it
        started, else why not."""
        ...

    def handle(
        self, agent: str, replica: int, message: AclMessage, journal: Sequence[HostCall]
    ) -> Handling:
        """The instance started last for (agent, replica) handles one message."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Fork:
    """The forked conversation, beside the original."""

    original: Recording
    recording: Recording
    step: int
    """The step of the edited message (the same in both)."""
    marks: tuple[Mark, ...]
    """One per step of `recording`."""
    notes: tuple[tuple[int, str], ...]
    """(step, what was odd there): host questions the record could not answer, or where
    the fork stopped early."""

    @property
    def edited(self) -> AclMessage:
        event = self.recording.events[self.step - 1].event
        assert isinstance(event, MessageSent)
        return event.message


def fork(
    recording: Recording,
    history: Sequence[Recorded],
    step: int,
    edits: Sequence[tuple[str, str]],
    runner: Runner,
) -> Fork:
    """The conversation with the message at `step` edited; raises `BadEdit`."""
    at = sent_at(recording, step)
    assert isinstance(at.event, MessageSent)
    message = edited(at.event.message, edits)
    if message == at.event.message:
        raise BadEdit(f"--edit leaves the message at step {step} as it was")
    return _Forking(recording, history, runner).run(step, message)


class _Forking:
    """One fork being made: the recorded events walked once, the fork emitted as it goes."""

    def __init__(self, recording: Recording, history: Sequence[Recorded], runner: Runner) -> None:
        self.recording = recording
        self.history = history
        self.runner = runner
        self.out: list[Recorded] = []
        self.marks: list[Mark] = []
        self.notes: list[tuple[int, str]] = []
        self.world: World = recording.prelude
        self.sends = {
            r.event.message.id: r.event
            for r in recording.events
            if isinstance(r.event, MessageSent)
        }
        self.forked: dict[str, MessageSent | None] = {}
        """Messages the fork sends otherwise than the record (None: no longer sent)."""
        self.rerouted: set[str] = set()
        """Messages whose dead letters the fork worked out again."""
        self.replaced: set[tuple[str, str]] = set()
        """(message id, agent): handlings the fork made again or dropped; their recorded
        sends, traps and dead letters are not the fork's."""
        self.dirty: set[tuple[str, int]] = set()
        """Instances re-executed: each later handling of theirs is run again too."""
        self.pending: deque[tuple[AclMessage, str]] = deque()
        """Deliveries the record never had, handled right after the step that made them."""
        self.scripts: dict[str, Script | None] = {}
        self.new_handlings = 0
        self.at = 0

    def run(self, step: int, message: AclMessage) -> Fork:
        for i, recorded in enumerate(self.recording.events, start=1):
            self.at = recorded.at
            if i < step:
                self._keep(recorded)
            elif i == step:
                old = recorded.event
                assert isinstance(old, MessageSent)
                self._send(message, old.cause, "edited", old)
            else:
                self._replay(recorded, i)
            while self.pending:
                if self.new_handlings >= MAX_NEW_HANDLINGS:
                    self.pending.clear()
                    self.notes.append(
                        (len(self.out), f"stopped after {MAX_NEW_HANDLINGS} new handlings")
                    )
                    break
                sent, target = self.pending.popleft()
                agent, replica = split_instance_key(target)
                self.new_handlings += 1
                self._rerun(agent, replica, sent, (), i, "new")
        forked = Recording(
            conversation_id=self.recording.conversation_id,
            events=tuple(self.out),
            prelude=self.recording.prelude,
            holders=self.recording.holders,
        )
        return Fork(
            original=self.recording,
            recording=forked,
            step=step,
            marks=tuple(self.marks),
            notes=tuple(self.notes),
        )

    def _replay(self, recorded: Recorded, i: int) -> None:
        """One recorded event after the fork point: kept, dropped or run again."""
        match recorded.event:
            case MessageSent(message=m, cause=cause):
                if (cause, m.sender) not in self.replaced:
                    self._keep(recorded)
            case MessageHandled(message_id=x, agent=a, replica=r, journal=journal):
                self._handling(recorded, x, a, r, journal, i)
            case AgentTrapped(message_id=x, agent=a, replica=r) if x:
                self._handling(recorded, x, a, r, (), i)
            case MessageDeadLettered(message_id=x, receiver=receiver):
                if x not in self.rerouted and (x, agent_of(receiver)) not in self.replaced:
                    self._keep(recorded)
            case _:
                self._keep(recorded)

    def _handling(
        self,
        recorded: Recorded,
        message_id: str,
        agent: str,
        replica: int,
        journal: Sequence[HostCall],
        i: int,
    ) -> None:
        if message_id in self.forked:
            now = self.forked[message_id]
            if now is None or instance_key(agent, replica) not in now.deliveries:
                self._drop(message_id, agent, ())  # the fork never delivers it here
                return
            self._rerun(agent, replica, now.message, journal, i - 1, "re-executed")
        elif (agent, replica) in self.dirty and message_id in self.sends:
            message = self.sends[message_id].message
            self._rerun(agent, replica, message, journal, i - 1, "re-executed")
        else:
            self._keep(recorded)

    def _rerun(
        self,
        agent: str,
        replica: int,
        message: AclMessage,
        journal: Sequence[HostCall],
        upto: int,
        mark: Mark,
    ) -> None:
        """The agent's build handles `message`, after catching up to step `upto` if it had
        not been run yet; what it sends is sent in the fork."""
        self.replaced.add((message.id, agent))
        why = "" if (agent, replica) in self.dirty else self._catch_up(agent, replica, upto)
        if why:
            self._emit(
                AgentTrapped(
                    agent=agent,
                    replica=replica,
                    incarnation=0,
                    kind="init",
                    reason=why,
                    message_id=message.id,
                    conversation_id=message.conversation_id,
                ),
                mark,
            )
            return
        done = self.runner.handle(agent, replica, message, journal)
        if done.trap:
            kind, _, reason = done.trap.partition(": ")
            event: Event = AgentTrapped(
                agent=agent,
                replica=replica,
                incarnation=0,
                kind=kind,
                reason=reason,
                message_id=message.id,
                conversation_id=message.conversation_id,
            )
        else:
            event = MessageHandled(
                message_id=message.id,
                conversation_id=message.conversation_id,
                agent=agent,
                replica=replica,
                journal=tuple(journal),
                duration_us=0,
                error=done.error,
            )
        self._emit(event, mark)
        self.notes += [(len(self.out), s) for s in done.surprises]
        for sent in done.sent:
            self._send(sent, message.id, "changed", self.sends.get(sent.id))
        self._drop(message.id, agent, done.sent)

    def _drop(self, message_id: str, agent: str, kept: Sequence[AclMessage]) -> None:
        """The recorded handling of `message_id` by `agent` is not the fork's: what it
        sent and the fork does not send again is gone (and so are its handlings)."""
        self.replaced.add((message_id, agent))
        again = {m.id for m in kept}
        for recorded in self.sends.values():
            m = recorded.message
            if recorded.cause == message_id and m.sender == agent and m.id not in again:
                self.forked[m.id] = None

    def _catch_up(self, agent: str, replica: int, upto: int) -> str:
        plan = self._script(agent)
        if plan is None:
            return f"no recorded build of {agent} to run"
        why = self.runner.start(plan, replica)
        if why:
            return why
        for item in plan.inputs:
            if item.replica == replica and item.step <= upto:
                self.runner.handle(agent, replica, item.message, item.journal)
        self.dirty.add((agent, replica))
        return ""

    def _script(self, agent: str) -> Script | None:
        if agent not in self.scripts:
            self.scripts[agent] = agent_script(self.recording, agent, self.history)
        return self.scripts[agent]

    def _send(self, message: AclMessage, cause: str, mark: Mark, old: MessageSent | None) -> None:
        """A message sent in the fork: as recorded when it is the same, otherwise routed
        anew, its new receivers' handlings to come."""
        if old is not None and mark != "edited" and _same(old.message, message):
            self.forked.pop(message.id, None)
            self._emit(old, "same")
            return
        if old is not None and (old.message.receivers, old.message.performative) == (
            message.receivers,
            message.performative,
        ):
            event = replace(old, message=message, cause=cause)
            dead: tuple[tuple[str, str], ...] = ()
        else:
            routed = route(message, self.world.agents)
            event = MessageSent(message=message, deliveries=routed.deliveries, cause=cause)
            dead = routed.dead_letters
            self.rerouted.add(message.id)
        self.forked[message.id] = event
        self._emit(event, mark if old is not None else "new")
        for receiver, reason in dead:
            self._emit(
                MessageDeadLettered(
                    message_id=message.id,
                    conversation_id=message.conversation_id,
                    receiver=receiver,
                    reason=reason,
                ),
                "new",
            )
        before = set(old.deliveries) if old is not None else set()
        for target in event.deliveries:
            if not is_client(target) and target not in before:
                self.pending.append((message, target))

    def _keep(self, recorded: Recorded) -> None:
        self._append(recorded, "recorded")

    def _emit(self, event: Event, mark: Mark) -> None:
        stream = stream_of(event)
        self._append(Recorded(position=0, stream=stream, version=0, at=self.at, event=event), mark)

    def _append(self, recorded: Recorded, mark: Mark) -> None:
        """Steps are numbered anew: the fork's positions are its own."""
        placed = replace(recorded, position=len(self.out) + 1)
        self.out.append(placed)
        self.marks.append(mark)
        self.world = evolve(self.world, placed)


def _same(a: AclMessage, b: AclMessage) -> bool:
    return a.sender == b.sender and compare([a], [b])[0].verdict == "same"


SIGNS: dict[Mark, str] = {
    "recorded": " ",
    "edited": "✎",
    "re-executed": "↻",
    "same": "=",
    "changed": "≠",
    "new": "+",
}
LEGEND = "✎ edited  ↻ handled again  = sent as recorded  ≠ sent otherwise  + not in the record"


def step_lines(recording: Recording, marks: Sequence[Mark] = ()) -> list[str]:
    """One line per step, its sign first (a fork's marks; none for the original) and a
    message's content on one line after it."""
    timeline = Timeline(recording)
    out = []
    for r, recorded in zip(rows(timeline), recording.events, strict=True):
        sign = SIGNS[marks[r.step - 1]] if marks else " "
        line = f"{sign} {format_row(r)}"
        if isinstance(recorded.event, MessageSent):
            m = recorded.event.message
            compact = one_line(m.content, m.language)
            line += f"  {compact[1] if compact else m.content}"
        out.append(line)
    return out


def render(result: Fork, edits: Sequence[tuple[str, str]]) -> str:
    """`caxton replay --fork-at … --no-tui`: the forked conversation's steps as text."""
    recording = result.recording
    changes = ", ".join(f"{name}={value}" for name, value in edits)
    out = [
        f"Fork of {recording.conversation_id} at step {result.step} ({changes}): "
        f"{len(recording.events)} steps (the original has {len(result.original.events)})",
        "",
        *step_lines(recording, result.marks),
        "",
        LEGEND,
    ]
    ended, was = recording.conversation, result.original.conversation
    if ended is not None and was is not None:
        out.append(f"outcome: {ended.outcome} (original: {was.outcome})")
    if result.notes:
        out += ["", "Notes (a host question the record cannot answer gets 0, or a tool error):"]
        out += [f"  step {step}: {note}" for step, note in result.notes]
    return "\n".join(out)


def counterpart(step: int, here: Recording, there: Recording, fork_step: int) -> int | None:
    """The step of `there` that is about the same thing as `step` of `here` (the same
    step before the fork point; after it, the same message sent, or the same message
    handled by the same agent), or None."""
    if step < fork_step:
        return step
    event = here.events[step - 1].event if 0 < step <= len(here.events) else None
    key = _about(event)
    if key is None:
        return None
    for i, recorded in enumerate(there.events, start=1):
        if i >= fork_step and _about(recorded.event) == key:
            return i
    return None


def _about(event: object) -> tuple[str, str, str] | None:
    match event:
        case MessageSent(message=m):
            return ("sent", m.id, "")
        case MessageHandled(message_id=x, agent=a) | AgentTrapped(message_id=x, agent=a):
            return ("handled", x, a)
        case MessageDeadLettered(message_id=x, receiver=r):
            return ("dead-letter", x, r)
        case _:
            return None
