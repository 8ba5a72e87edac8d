"""Rebuilding an instance's memory: read what it handled from the log, re-execute it.

The pure part, what to re-execute, is `caxton.domain.memory`. Here the log is read (the
agent's own stream for where the memory began and its last snapshot, then the log
after that snapshot, page by page) and the instance re-executes it in its sandbox: the
host answers come from the record, what it sends is collected and compared, never
delivered, and nothing is logged or traced.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from caxton.domain.events import AgentDeployed, AgentSnapshotted, AgentStarted, Recorded
from caxton.domain.ids import agent_stream, conversation_stream
from caxton.domain.memory import Handling, Inputs, Memory, Plan, lineage, rebuilding, without
from caxton.replay.reexec import Comparison, Journal, compare
from caxton.shell.reexec import ReplayServices
from caxton.shell.wasm import (
    AgentError,
    AgentInstance,
    Trapped,
    UnknownComponent,
    WasmError,
    WasmHost,
)


class History(Protocol):
    """What a rebuild reads of a log: the server's `EventLog`, a log file read offline
    (`caxton.shell.archive.reader.LogFile`), or a server's log through the client."""

    async def read_streams(
        self, streams: Sequence[str], *, to_position: int | None = None
    ) -> list[Recorded]: ...

    def pages(
        self, *, from_position: int = 1, to_position: int | None = None
    ) -> AsyncIterator[list[Recorded]]: ...


class Log(History, Protocol):
    async def last_position(self) -> int: ...


async def read_plan(
    log: History,
    agent: str,
    replica: int,
    *,
    until: int | None = None,
    from_start: bool = False,
) -> Plan | None:
    """What rebuilding `agent#replica`'s memory takes, as of the end of the log (or of
    position `until`); None when the instance has no memory there. `from_start`: every
    handling since the memory began, its snapshots ignored (what another build must
    re-execute)."""
    # a snapshot right after `until` was taken after the handling at `until` (it is
    # committed in that handling's batch, right after it): the memory as of `until` too
    own = await log.read_streams(
        [agent_stream(agent)], to_position=None if until is None else until + 1
    )
    if until is not None:
        own = [r for r in own if r.position <= until or isinstance(r.event, AgentSnapshotted)]
    found = lineage(own, replica)
    origin, snapshot = found.origin, found.snapshot
    if origin is None or not isinstance(origin.event, AgentStarted):
        return None
    inputs = Inputs(agent, replica, until)
    inputs.init_journal = origin.event.journal
    inputs.deployed = found.deployed
    start = origin.position
    if not from_start and snapshot is not None and isinstance(snapshot.event, AgentSnapshotted):
        inputs.snapshot = snapshot.event
        start = snapshot.position
    async for page in log.pages(from_position=start + 1, to_position=until):
        for recorded in page:
            inputs.add(recorded)
    missing = inputs.missing()
    if missing:
        streams = [conversation_stream(c) for c in sorted(missing)]
        for recorded in await log.read_streams(streams, to_position=start):
            inputs.add_message(recorded)
    return inputs.plan()


async def memory_plans(log: History, agent: str) -> list[Plan]:
    """For each replica of `agent`'s last deploy that keeps memory, every handling since
    its memory began (snapshots ignored)."""
    own = await log.read_streams([agent_stream(agent)])
    deploys = [r.event for r in own if isinstance(r.event, AgentDeployed)]
    replicas = deploys[-1].replicas if deploys else 0
    plans = [await read_plan(log, agent, r, from_start=True) for r in range(replicas)]
    return [p for p in plans if p is not None]


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """The memory is back: `rebuilt` handlings re-executed after restoring the snapshot
    of `plan.restored` handlings, in `duration_us`; `diverged` describes the first
    handling whose answers differ from the record (and how many do), "" when none."""

    plan: Plan
    rebuilt: int
    duration_us: int
    diverged: str = ""


@dataclass(frozen=True, slots=True)
class Poisoned:
    """Re-executing `handling` trapped: quarantine it and rebuild again without it."""

    handling: Handling
    reason: str


class RebuildFailed(Exception):
    """`init` or `restore` fails on re-execution: the instance cannot be rebuilt."""


async def rebuild(instance: AgentInstance, plan: Plan, config: str) -> Rebuilt | Poisoned:
    """Re-executes `plan` on a new instance (nothing ran on it yet)."""
    started = time.perf_counter_ns()
    agent = plan.agent
    init = ReplayServices(agent, None, Journal(plan.init_journal))
    outcome = await instance.init_async(config, init, on_pool=True)
    if isinstance(outcome, Trapped | AgentError):
        raise RebuildFailed(f"init fails when re-executed: {_why(outcome)}")
    if plan.snapshot is not None:
        try:
            outcome = await instance.restore_async(plan.snapshot, init)
        except WasmError as exc:  # a build without restore: --keep-memory onto it, say
            raise RebuildFailed(f"cannot restore the snapshot: {exc}") from None
        if isinstance(outcome, Trapped | AgentError):
            raise RebuildFailed(f"restore fails on the snapshot: {_why(outcome)}")
    differ: list[str] = []
    for handling in plan.handlings:
        services = ReplayServices(agent, handling.message, Journal(handling.journal))
        envelope = json.dumps(handling.message.to_dict())
        outcome = await instance.handle_async(envelope, services, on_pool=True)
        if isinstance(outcome, Trapped):
            return Poisoned(handling, f"{outcome.kind}: {outcome.reason}")
        error = outcome.text if isinstance(outcome, AgentError) else ""
        different = [c for c in compare(handling.sent, services.sent) if c.verdict != "same"]
        if different or error != handling.error or services.journal.surprises:
            differ.append(_difference(handling, different, error, services.journal.surprises))
    diverged = ""
    if differ:
        diverged = f"{len(differ)} of {len(plan.handlings)} handlings differ; first: {differ[0]}"
    took = (time.perf_counter_ns() - started) // 1000
    return Rebuilt(plan, len(plan.handlings), took, diverged)


def _difference(handling: Handling, different: list[Comparison], error: str, odd: list[str]) -> str:
    m = handling.message
    what = f"{m.performative.value} {m.id} from {m.sender}"
    if odd:
        return f"{what}: {odd[0]}"
    if error != handling.error:
        return f"{what}: error {error or 'none'} (recorded: {handling.error or 'none'})"
    return f"{what}: {len(different)} answer(s) differ from the record"


def _why(outcome: Trapped | AgentError) -> str:
    return f"{outcome.kind}: {outcome.reason}" if isinstance(outcome, Trapped) else outcome.text


async def memory_at(
    log: Log,
    host: WasmHost,
    agent: str,
    replica: int,
    *,
    until: int | None = None,
    fetch: Callable[[str], Awaitable[bytes | None]] | None = None,
) -> Memory | None:
    """The memory of `agent#replica` now (or as of position `until`), rebuilt on a
    sandbox instance of the build in force there: nothing it does leaves the sandbox,
    nothing is recorded (a message whose re-execution traps is skipped, as a rebuild
    would quarantine it). None when the instance keeps no memory there. `fetch` gets a
    build the host does not hold yet."""
    position = until if until is not None else await log.last_position()
    plan = await read_plan(log, agent, replica, until=position)
    if plan is None:
        return None
    try:
        loaded = host.get(plan.component)
    except UnknownComponent:
        wasm = await fetch(plan.component) if fetch is not None else None
        if wasm is None:
            raise RebuildFailed(f"its build {plan.component[:12]} is not here") from None
        try:
            loaded = await asyncio.to_thread(host.load, wasm, f"{agent}.wasm")
        except WasmError as exc:
            raise RebuildFailed(str(exc)) from None
    limits = rebuilding(plan.limits)
    while True:
        try:
            instance = host.instantiate(loaded, limits, name=f"{agent}#{replica} (sandbox)")
        except WasmError as exc:
            raise RebuildFailed(str(exc)) from None
        try:
            result = await rebuild(instance, plan, plan.config)
            if isinstance(result, Poisoned):  # as a rebuild would quarantine it
                plan = without(plan, result.handling.message.id)
                continue
            services = ReplayServices(agent, None, Journal(()))
            state, taken = await instance.snapshot_async(services, on_pool=True)
            if state is None:
                why = taken.reason if isinstance(taken, Trapped) else getattr(taken, "text", "")
                raise RebuildFailed(f"snapshot fails: {why}")
        finally:
            instance.close()
        return Memory(
            agent=agent,
            replica=replica,
            state=state,
            handled=plan.restored + result.rebuilt,
            restored=plan.restored,
            rebuilt=result.rebuilt,
            position=position,
            quarantined=tuple(sorted(plan.quarantined)),
            rebuild_us=result.duration_us,
        )
