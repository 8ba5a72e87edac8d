"""Regression replay, the part with effects: read the log for an agent's conversations,
run a new build on each in parallel (one compile, a worker thread per core), and hand
back one verdict per conversation (`caxton replay --agent A --with A=FILE`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence

from caxton.domain.events import (
    AgentDeployed,
    AgentTrapped,
    Limits,
    MessageHandled,
    Recorded,
)
from caxton.replay.recording import Recording
from caxton.replay.regression import Case, Found, Verdict, init_failed, scan, verdict
from caxton.shell.archive import Source
from caxton.shell.archive.sources import recording
from caxton.shell.reexec import ReexecFailed, Rerun

TELLING = (AgentDeployed, MessageHandled, AgentTrapped)
"""The events `scan` reads."""


async def find(source: Source, agent: str, since_ms: int) -> Found:
    """One pass over the whole log: was the agent deployed, and where did it take part
    (only the events that can tell are kept while it reads)."""
    telling = [r async for r in source.everything() if isinstance(r.event, TELLING)]
    return scan(agent, telling, since_ms=since_ms)


async def stories(
    source: Source, conversations: Sequence[str]
) -> list[tuple[Recording, list[Recorded]]]:
    """Each conversation's recording and the events its story was made from."""
    found = []
    for conversation_id in conversations:
        rec, history = await recording(source, conversation_id)
        last = rec.events[-1].position
        found.append((rec, [r for r in history if r.position <= last]))
    return found


def workers_for(cases: int) -> int:
    """As many runs at once as there are cores, and no more than there are cases."""
    return max(1, min(os.cpu_count() or 1, cases))


async def regress(
    cases: Sequence[Case], rerun: Rerun, *, at_once: int, done: Callable[[], None]
) -> list[Verdict]:
    """Runs the build on every case, `at_once` at a time; the verdicts in case order.
    `done` is called as each case ends (for a progress display)."""
    gate = asyncio.Semaphore(at_once)

    async def one(case: Case) -> Verdict:
        async with gate:
            limits = case.limits
            if limits is None:
                recording = case.recording
                deployed = recording.prelude.agents.get(case.script.agent) if recording else None
                limits = deployed.limits if deployed else Limits()
            try:
                report = await rerun.run(case.script, limits)
            except ReexecFailed as exc:
                return init_failed(
                    case.conversation_id,
                    str(exc),
                    trapped=exc.trapped,
                    inputs=len(case.script.inputs),
                )
            finally:
                done()
            return verdict(case.conversation_id, report)

    return list(await asyncio.gather(*(one(c) for c in cases)))
