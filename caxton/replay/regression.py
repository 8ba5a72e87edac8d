"""Regression replay, the pure part: which recorded handlings of an agent to run a new
build on, and what each conversation's re-execution amounts to.

`caxton replay --agent bidder-b --with bidder-b=v2.wasm` finds every conversation in
which the agent handled a message (`scan`), turns them into cases (`cases`), has the
shell run the new build on each (`caxton.shell.reexec.Rerun`), and sums each report up
as one verdict (`verdict`): identical, diverged, trapped, or needs-host-answer (the build
asked the host something the record cannot answer), with its first divergence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal

from caxton.domain.acl import AclMessage
from caxton.domain.events import AgentDeployed, AgentTrapped, Limits, MessageHandled, Recorded
from caxton.domain.memory import Plan
from caxton.replay.recording import Recording
from caxton.replay.reexec import Input, Outcome, Report, Script, script

Status = Literal["identical", "diverged", "trapped", "needs-host-answer"]

EXIT_IDENTICAL = 0
EXIT_DIVERGED = 1
"""At least one conversation diverged or trapped: a regression."""
EXIT_BAD_INPUT = 2
EXIT_UNANSWERED = 3
"""None diverged or trapped, but some asked the host what the record cannot answer:
the record cannot tell whether the build regressed."""

SUMMARY_CHARS = 48


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """What one pass over the log learned about an agent."""

    deployed: bool
    """Whether the log ever deployed the agent (at any time, not only in the window)."""
    conversations: tuple[str, ...]
    """The conversations in which it handled (or trapped on) a message in the window, in
    the order of its first such handling."""


def scan(agent: str, events: Iterable[Recorded], *, since_ms: int = 0) -> Found:
    """The conversations the agent took part in at or after `since_ms`."""
    deployed = False
    seen: dict[str, None] = {}
    for recorded in events:
        event = recorded.event
        if isinstance(event, AgentDeployed) and event.agent == agent:
            deployed = True
        elif recorded.at >= since_ms and _handled_by(event, agent):
            assert isinstance(event, MessageHandled | AgentTrapped)
            seen.setdefault(event.conversation_id, None)
    return Found(deployed=deployed, conversations=tuple(seen))


def _handled_by(event: object, agent: str) -> bool:
    if isinstance(event, MessageHandled):
        return event.agent == agent
    return isinstance(event, AgentTrapped) and event.agent == agent and bool(event.message_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """Handlings to run one build on, from a fresh `init`, compared as one verdict."""

    conversation_id: str
    """What the case covers: a conversation's id, or `memory of NAME#R` for the handlings
    of an instance's memory."""
    script: Script
    recording: Recording | None
    limits: Limits | None = None
    """The limits to run with (a memory's case has no recording to take them from)."""


def memory_case(plan: Plan) -> Case:
    """Every handling of an instance's memory since it began, as one case from a fresh
    `init` with the memory's first `init` answers: what a build that keeps the memory
    would have to re-execute (`caxton agent deploy --keep-memory`). A step is a position
    of the log."""
    inputs = tuple(
        Input(
            step=h.position,
            replica=plan.replica,
            message=h.message,
            journal=h.journal,
            sent=h.sent,
            error=h.error,
        )
        for h in plan.handlings
    )
    script = Script(
        agent=plan.agent,
        component=plan.component,
        config=plan.config,
        init_journal=plan.init_journal,
        inputs=inputs,
    )
    return Case(
        conversation_id=f"memory of {plan.agent}#{plan.replica}",
        script=script,
        recording=None,
        limits=plan.limits,
    )


def cases(agent: str, stories: Iterable[tuple[Recording, Sequence[Recorded]]]) -> Iterator[Case]:
    """The handlings to re-execute for `agent`, grouped as they will run: one case per
    conversation, each from a fresh instance, as `caxton replay --with` runs one.

    This is the seam for agents with durable memory: their handlings depend on every
    earlier one since the memory began, so they would be one case (or one per snapshot)
    holding every handling from the start of the memory, across conversations."""
    for recording, history in stories:
        yield Case(
            conversation_id=recording.conversation_id,
            script=script(recording, agent, history),
            recording=recording,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """One conversation re-executed: its status and, unless identical, where it first
    differed (`step` None: in `init`, before any message)."""

    conversation_id: str
    status: Status
    inputs: int
    step: int | None = None
    received: str = ""
    """The message handled at that step (`cfp from manager`)."""
    expected: str = ""
    came: str = ""


def verdict(conversation_id: str, report: Report) -> Verdict:
    """The report as one row: the first input the build did not answer as recorded
    decides the status (what follows a divergence is not to be trusted)."""
    inputs = len(report.outcomes)
    first = next((o for o in report.outcomes if not o.same), None)
    if first is None:
        return Verdict(conversation_id=conversation_id, status="identical", inputs=inputs)
    received = first.input.message
    status, expected, came = _first_difference(first)
    return Verdict(
        conversation_id=conversation_id,
        status=status,
        inputs=inputs,
        step=first.input.step,
        received=f"{received.performative.value} from {received.sender}",
        expected=expected,
        came=came,
    )


def init_failed(conversation_id: str, reason: str, *, trapped: bool, inputs: int) -> Verdict:
    """The build could not even start for this conversation."""
    return Verdict(
        conversation_id=conversation_id,
        status="trapped" if trapped else "diverged",
        inputs=inputs,
        expected="init succeeds",
        came=reason,
    )


def _first_difference(o: Outcome) -> tuple[Status, str, str]:
    if o.unanswered:
        return "needs-host-answer", "a question the record answers", o.unanswered[0]
    if o.trap and not o.input.trap:
        return "trapped", _sent(o.input.sent), o.trap
    for c in o.comparisons:
        if c.verdict != "same":
            return "diverged", _message(c.expected), _message(c.actual)
    if o.trap != o.input.trap:
        return "diverged", f"trap: {o.input.trap}", "no trap"
    if o.error != o.input.error:
        return "diverged", f"error: {o.input.error or 'none'}", f"error: {o.error or 'none'}"
    return "diverged", "the host asked as recorded", o.surprises[0] if o.surprises else "?"


def _sent(messages: Sequence[AclMessage]) -> str:
    return _message(messages[0]) if messages else "(sent nothing)"


def _message(m: AclMessage | None) -> str:
    """`propose → manager {"price":7}`, the content on one line and cut short."""
    if m is None:
        return "(no message)"
    content = m.content
    if m.language == "json":
        with suppress(ValueError, RecursionError):
            content = json.dumps(json.loads(content), separators=(",", ":"), sort_keys=True)
    if len(content) > SUMMARY_CHARS:
        content = content[: SUMMARY_CHARS - 1] + "…"
    return f"{m.performative.value} → {', '.join(m.receivers)} {content}".rstrip()


def exit_status(verdicts: Sequence[Verdict]) -> int:
    """0 when all are identical; 1 when any diverged or trapped; 3 when the rest only
    need host answers the record lacks."""
    statuses = {v.status for v in verdicts}
    if statuses & {"diverged", "trapped"}:
        return EXIT_DIVERGED
    if "needs-host-answer" in statuses:
        return EXIT_UNANSWERED
    return EXIT_IDENTICAL


def table(agent: str, build: str, verdicts: Sequence[Verdict]) -> str:
    """One row per conversation, then a line of counts."""
    width = max([len("conversation"), *(len(v.conversation_id) for v in verdicts)])
    out = [
        f"Regression replay of {agent} with {build}: {len(verdicts)} conversations",
        "",
        f"{'conversation':<{width}}  {'status':<17}  {'step':>4}  first divergence",
    ]
    for v in verdicts:
        step = "init" if v.step is None and v.status != "identical" else str(v.step or "")
        out.append(f"{v.conversation_id:<{width}}  {v.status:<17}  {step:>4}  {_where(v)}")
        if v.status != "identical":
            pad = " " * (width + 2 + 17 + 2 + 4 + 2)
            out.append(f"{pad}expected  {v.expected}")
            out.append(f"{pad}came      {v.came}")
    counts = {s: sum(v.status == s for v in verdicts) for s in STATUSES}
    marks = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    ok = all(v.status == "identical" for v in verdicts)
    out += ["", f"{'✓' if ok else '✗'} {marks}"]
    return "\n".join(out)


STATUSES: tuple[Status, ...] = ("identical", "diverged", "trapped", "needs-host-answer")


def _where(v: Verdict) -> str:
    if v.status == "identical":
        return f"({v.inputs} input{'' if v.inputs == 1 else 's'}, same as recorded)"
    return v.received or "in init"
