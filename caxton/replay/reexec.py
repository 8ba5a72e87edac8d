"""Re-execution, the pure part: what an agent was given, what it answered, and whether a
new build answers the same.

The shell (`caxton.shell.reexec`) runs the new build in wasmtime; everything it needs to
know and decide is here: the agent's recorded inputs in order (each delivered message
with the journal of host answers — `now`, `random`, tool results — it got while
handling it), the messages it sent in answer, and the comparison of both runs. The
other agents are never run: their messages are taken from the record.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from caxton.domain.acl import AclMessage
from caxton.domain.events import (
    AgentDeployed,
    AgentStarted,
    AgentTrapped,
    HostCall,
    MessageHandled,
    MessageSent,
    Recorded,
)
from caxton.domain.journal import answers
from caxton.replay.recording import Recording
from caxton.replay.views import pretty

Verdict = Literal["same", "different", "missing", "extra"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Input:
    """One message delivered to the agent, and what the recorded run did with it."""

    step: int
    replica: int
    message: AclMessage
    journal: tuple[HostCall, ...]
    sent: tuple[AclMessage, ...]
    error: str = ""
    trap: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """Everything needed to run one agent again on its recorded inputs."""

    agent: str
    component: str
    config: str
    init_journal: tuple[HostCall, ...]
    inputs: tuple[Input, ...]
    memories: tuple[tuple[int, str], ...] = ()
    """For an agent with memory: (replica, its memory as recorded just before its first
    input here), restored after `init`, so that the build starts where the agent was."""


class NotInConversation(Exception):
    """The agent named for re-execution handled nothing in this conversation."""


def script(recording: Recording, agent: str, history: Sequence[Recorded] = ()) -> Script:
    """The agent's recorded inputs in this conversation, in the order it handled them.
    `history` (the events the recording was made from) supplies the journal of the
    agent's last `init` before the conversation."""
    events = recording.events
    sends: dict[str, tuple[int, MessageSent]] = {}
    answers: dict[str, list[AclMessage]] = {}
    for i, r in enumerate(events, start=1):
        if isinstance(r.event, MessageSent):
            sends[r.event.message.id] = (i, r.event)
            if r.event.message.sender == agent and r.event.cause:
                answers.setdefault(r.event.cause, []).append(r.event.message)
    inputs: list[Input] = []
    for i, r in enumerate(events, start=1):
        event = r.event
        if isinstance(event, MessageHandled) and event.agent == agent:
            found = sends.get(event.message_id)
            if found is None:
                continue
            inputs.append(
                Input(
                    step=i,
                    replica=event.replica,
                    message=found[1].message,
                    journal=event.journal,
                    sent=tuple(answers.get(event.message_id, ())),
                    error=event.error,
                )
            )
        elif isinstance(event, AgentTrapped) and event.agent == agent and event.message_id:
            found = sends.get(event.message_id)
            if found is not None:
                inputs.append(
                    Input(
                        step=i,
                        replica=event.replica,
                        message=found[1].message,
                        journal=(),
                        sent=(),
                        trap=f"{event.kind}: {event.reason}",
                    )
                )
    if not inputs:
        raise NotInConversation(
            f"{agent!r} handled no message in conversation {recording.conversation_id}"
        )
    deployed = recording.prelude.agents.get(agent)
    started = _last_start([*history, *recording.events], agent)
    return Script(
        agent=agent,
        component=deployed.component if deployed else _deployed_component(recording, agent),
        config=deployed.config if deployed else "",
        init_journal=started,
        inputs=tuple(inputs),
    )


def agent_script(
    recording: Recording, agent: str, history: Sequence[Recorded] = ()
) -> Script | None:
    """As `script`, and for an agent that handled nothing in the conversation a script
    without inputs (its build and config, to run it on a message it was never sent);
    None for an agent the log never deployed."""
    try:
        return script(recording, agent, history)
    except NotInConversation:
        pass
    deployed = recording.prelude.agents.get(agent)
    component = deployed.component if deployed else _deployed_component(recording, agent)
    if not component:
        return None
    return Script(
        agent=agent,
        component=component,
        config=deployed.config if deployed else "",
        init_journal=_last_start([*history, *recording.events], agent),
        inputs=(),
    )


class Journal:
    """Feeds a recorded journal back, call by call. A call the record does not hold (the
    new build asks for something the old one did not) gets a neutral answer and is
    remembered as a difference. The agent's log lines answer nothing: they are skipped,
    and a build that logs differently is not a difference."""

    def __init__(self, calls: Sequence[HostCall]) -> None:
        self._calls = list(answers(calls))
        self._next = 0
        self.surprises: list[str] = []
        self.unanswered: list[str] = []
        """The surprises that are questions the record cannot answer (a subset)."""

    def take(self, kind: str) -> HostCall | None:
        if self._next < len(self._calls):
            call = self._calls[self._next]
            if call.kind == kind or (kind == "call-tool" and call.kind == "tool-error"):
                self._next += 1
                return call
            self.unanswerable(f"asked the host for {kind}() where the record has {call.kind}()")
            return None
        self.unanswerable(f"asked the host for {kind}() beyond what was recorded")
        return None

    def unanswerable(self, question: str) -> None:
        """A question the record holds no answer to (the build got a neutral one)."""
        self.surprises.append(question)
        self.unanswered.append(question)

    def unused(self) -> list[str]:
        return [c.kind for c in self._calls[self._next :]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """One outgoing message of the recorded run against the new build's."""

    verdict: Verdict
    expected: AclMessage | None
    actual: AclMessage | None
    differences: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the new build did with one input."""

    input: Input
    sent: tuple[AclMessage, ...]
    error: str = ""
    trap: str = ""
    surprises: tuple[str, ...] = ()
    comparisons: tuple[Comparison, ...] = field(default=())
    unanswered: tuple[str, ...] = ()
    """The surprises that asked the host something the record cannot answer."""

    @property
    def same(self) -> bool:
        return (
            all(c.verdict == "same" for c in self.comparisons)
            and self.error == self.input.error
            and self.trap == self.input.trap
            and not self.surprises
        )


COMPARED = ("performative", "receivers", "content", "protocol", "in_reply_to", "reply_with")


def compare(expected: Sequence[AclMessage], actual: Sequence[AclMessage]) -> tuple[Comparison, ...]:
    """Pairwise, in send order: ids follow from the cause and the index, so the n-th
    message of each run is the same message when the builds agree."""
    out: list[Comparison] = []
    for i in range(max(len(expected), len(actual))):
        e = expected[i] if i < len(expected) else None
        a = actual[i] if i < len(actual) else None
        if e is None:
            out.append(Comparison(verdict="extra", expected=None, actual=a))
        elif a is None:
            out.append(Comparison(verdict="missing", expected=e, actual=None))
        else:
            fields = tuple(f for f in COMPARED if _field(e, f) != _field(a, f))
            out.append(
                Comparison(
                    verdict="different" if fields else "same",
                    expected=e,
                    actual=a,
                    differences=fields,
                )
            )
    return tuple(out)


def judge(
    item: Input,
    sent: Sequence[AclMessage],
    *,
    error: str = "",
    trap: str = "",
    surprises: Sequence[str] = (),
    unanswered: Sequence[str] = (),
) -> Outcome:
    return Outcome(
        input=item,
        sent=tuple(sent),
        error=error,
        trap=trap,
        surprises=tuple(surprises),
        comparisons=compare(item.sent, sent),
        unanswered=tuple(unanswered),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    agent: str
    build: str
    outcomes: tuple[Outcome, ...]

    @property
    def identical(self) -> bool:
        return all(o.same for o in self.outcomes)

    @property
    def trapped(self) -> bool:
        return any(o.trap and not o.input.trap for o in self.outcomes)


def render(report: Report) -> str:
    """The re-execution report: one line per outgoing message, then the first
    difference side by side."""
    out = [f"Re-executing {report.agent} with {report.build}", ""]
    first: Outcome | None = None
    for o in report.outcomes:
        received = o.input.message
        out.append(f"step {o.input.step:>3}  {received.performative.value} from {received.sender}")
        for c in o.comparisons:
            m = c.expected or c.actual
            assert m is not None
            label = f"{m.performative.value} → {', '.join(m.receivers)}"
            mark = {
                "same": "✓ same",
                "different": "✗ different",
                "missing": "✗ missing",
                "extra": "✗ extra",
            }[c.verdict]
            out.append(
                f"    {mark:<12} {label}"
                + (f"  ({', '.join(c.differences)})" if c.differences else "")
            )
        if not o.comparisons and not o.sent and not o.trap and not o.input.trap:
            out.append("    (sent nothing, as recorded)")
        if o.trap != o.input.trap:
            out.append(f"    ✗ trap: {o.trap or 'none'} (recorded: {o.input.trap or 'none'})")
        elif o.trap:
            out.append(f"    ✓ trapped as recorded: {o.trap}")
        if o.error != o.input.error:
            out.append(f"    ✗ error: {o.error or 'none'} (recorded: {o.input.error or 'none'})")
        for s in o.surprises:
            out.append(f"    ✗ {s}")
        if first is None and not o.same:
            first = o
    out.append("")
    if first is None:
        out.append(
            f"✓ identical: {len(report.outcomes)} inputs, "
            f"{sum(len(o.sent) for o in report.outcomes)} messages, same as recorded"
        )
        return "\n".join(out)
    out.append(
        f"✗ diverges at step {first.input.step} ({first.input.message.performative.value} "
        f"from {first.input.message.sender})"
    )
    if report.trapped:
        out.append("  the new build traps")
    for c in first.comparisons:
        if c.verdict != "same":
            out += side_by_side(c)
            break
    return "\n".join(out)


def side_by_side(c: Comparison, width: int = 44) -> list[str]:
    left = _describe(c.expected)
    right = _describe(c.actual)
    out = [
        "",
        f"  {'expected (recorded)':<{width}}  actual (new build)",
        f"  {'-' * width}  {'-' * width}",
    ]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        mark = " " if a == b else "|"
        out.append(f"  {a:<{width}}{mark} {b}")
    if c.expected is not None and c.actual is not None and "content" in c.differences:
        diff = difflib.unified_diff(
            pretty(c.expected.content, c.expected.language).splitlines(),
            pretty(c.actual.content, c.actual.language).splitlines(),
            "expected",
            "actual",
            lineterm="",
        )
        out += ["", "  content diff:", *(f"    {line}" for line in diff)]
    return out


def _describe(m: AclMessage | None) -> list[str]:
    if m is None:
        return ["(no message)"]
    lines = [f"performative {m.performative.value}", f"receivers    {', '.join(m.receivers)}"]
    lines += pretty(m.content, m.language).splitlines()
    return lines


def _field(m: AclMessage, name: str) -> object:
    value = getattr(m, name)
    if name == "content" and m.language == "json":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _last_start(events: Sequence[Recorded], agent: str) -> tuple[HostCall, ...]:
    for r in reversed(events):
        if isinstance(r.event, AgentStarted) and r.event.agent == agent:
            return r.event.journal
    return ()


def _deployed_component(recording: Recording, agent: str) -> str:
    for r in recording.events:
        if isinstance(r.event, AgentDeployed) and r.event.agent == agent:
            return r.event.component
    return ""
